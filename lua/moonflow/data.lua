-- mf.data: sources of training data. Each source has :batch(n[, generator])
-- returning a tensor {n, ...} on the device (tensor datasets also return the
-- labels), a `dim` (elements per sample) and a `shape` (of one sample).
--   toy 2-D sets sampled on the device: two_moons, checkerboard,
--     eight_gaussians, spirals, rings (cl/data.cl has their definitions);
--   mixture: an oracle GaussianMixture;
--   tensors / npy / idx / fashion_mnist: shuffled minibatches of a tensor.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local IO = require "moonflow.io"

local D = {}

local function fail(fn, fmt, ...) error(("moonflow.data.%s: " .. fmt):format(fn, ...), 3) end

-- the generator a source draws from: opts.generator, else opts.rngs.data,
-- else mf's default generator
local function generator_of(opts)
  if opts.generator then return opts.generator end
  if opts.rngs then return opts.rngs.data end
  return require("moonflow.random").default
end

local function check_n(fn, n)
  if math.type(n) ~= "integer" or n < 1 then fail(fn, "batch size must be a positive integer, got %s", tostring(n)) end
end

---------------------------------------------------------------- toy sets
-- name -> kernel kind and defaults: noise is the std of the Gaussian added
-- to every point; radius (eight_gaussians: of the circle of centers; rings:
-- of the innermost ring and the spacing), rings the number of rings.
local TOY = {
  two_moons = { kind = 0, noise = 0.05 },
  checkerboard = { kind = 1, noise = 0 },
  eight_gaussians = { kind = 2, noise = 0.2, radius = 2 },
  spirals = { kind = 3, noise = 0.1 },
  rings = { kind = 4, noise = 0.05, radius = 0.5, rings = 4 },
}
D.toy_sets = { "two_moons", "checkerboard", "eight_gaussians", "spirals", "rings" }

local Toy = {}
Toy.__index = Toy
Toy.__name = "moonflow.data.Toy"

-- x {n, 2}: from 3 uniforms and 2 normals per point
function Toy:batch(n, g)
  check_n("batch", n)
  g = g or self.generator
  local u = g:uniform({ n, 3 })
  local z = g:normal({ n, 2 })
  return core.toy2d(self.kind, u, z, self.noise, self.radius or 0, self.rings or 0)
end

function Toy:get_state() return { generator = self.generator:get_state() } end
function Toy:set_state(s) self.generator:set_state(s.generator) end

function Toy:__tostring()
  return ("moonflow.data.toy(%q, noise = %g)"):format(self.name, self.noise)
end

local function toy2d(name, opts)
  local def = TOY[name]
  local src = setmetatable({ name = name, kind = def.kind, dim = 2, shape = { 2 }, generator = generator_of(opts) }, Toy)
  for _, k in ipairs { "noise", "radius", "rings" } do
    local v = opts[k]
    if v == nil then v = def[k] end
    if v ~= nil and (type(v) ~= "number" or v < 0 or v ~= v) then
      fail("toy", "%s: option %s must be a non-negative number, got %s", name, k, tostring(v))
    end
    src[k] = v
  end
  if name == "rings" and (src.rings < 1 or src.rings % 1 ~= 0) then
    fail("toy", "rings: option rings must be a positive integer, got %s", tostring(src.rings))
  end
  return src
end

---------------------------------------------------------------- mixtures
local Mixture = {}
Mixture.__index = Mixture
Mixture.__name = "moonflow.data.Mixture"

-- x {n, D} and the component labels (i32, 0-based)
function Mixture:batch(n, g)
  check_n("batch", n)
  return self.mixture:sample(n, g or self.generator)
end
Mixture.get_state, Mixture.set_state = Toy.get_state, Toy.set_state

-- mixture(gm or {means, stds, weights}, opts)
function D.mixture(gm, opts)
  opts = opts or {}
  if type(gm) ~= "table" then fail("mixture", "expected a GaussianMixture or {means, stds, weights}, got %s", type(gm)) end
  if type(gm.sample) ~= "function" then gm = require("moonflow.oracle").GaussianMixture(gm) end
  return setmetatable({ name = "mixture", mixture = gm, dim = gm.dim, shape = { gm.dim },
    num_classes = gm.num_components, generator = generator_of(opts) }, Mixture)
end

---------------------------------------------------------------- tensors
-- A uniformly random permutation of 0..n-1 (i32 {n}) drawn on the device,
-- nothing read back: keys ~ randint [0, 2^31 - 1) per row (rows past n, up
-- to the power of two M, get key 2^31 - 1 and sort last), sorted together
-- with their row indices by a bitonic network. Phase k (2, 4, .., M) merges
-- the ascending halves of each block of k: the second half reversed makes
-- the block bitonic, then half-cleaners at distance j = k/2, .., 1 over the
-- view {M / 2j, 2, j} put min(lo, hi) in lo and max in hi (the indices
-- follow the keys through `where`). Equal keys (about n^2 / 2^32 pairs) keep
-- the network's order. log2(M) (log2(M) + 1) / 2 steps of 9 small kernels.
local INT_MAX = 2147483647
local rev_cache = setmetatable({}, { __mode = "v" })
function D.permutation(g, n)
  local M = 2
  while M < n do M = M * 2 end
  local keys = g:randint({ n }, 0, INT_MAX, { rows = false }) -- whole, even in shard mode
  if M > n then keys = core.cat({ keys, core.full({ M - n }, INT_MAX, "i32") }, 1) end
  local idx = core.arange(M, 0, 1, "i32")
  local function halves(t, j) -- lo, hi views {M / 2j, 1, j}
    local v = core.reshape(t, { M // (2 * j), 2, j })
    return core.narrow(v, 2, 1, 1), core.narrow(v, 2, 2, 1)
  end
  local k = 2
  while k <= M do
    local h = k // 2
    if h > 1 then -- reverse the second half of every block of k
      local rev = rev_cache[h]
      if not rev then rev = core.arange(h, h - 1, -1, "i32"); rev_cache[h] = rev end
      for _, t in ipairs { keys, idx } do
        local _, hi = halves(t, h)
        core.copy_(hi, core.index_select(hi, 3, rev))
      end
    end
    local j = h
    while j >= 1 do
      local klo, khi = halves(keys, j)
      local ilo, ihi = halves(idx, j)
      local swap = core.binary("lt", khi, klo)
      local a, b = core.binary("minimum", klo, khi), core.binary("maximum", klo, khi)
      local c, d = core.where(swap, ihi, ilo), core.where(swap, ilo, ihi)
      core.copy_(klo, a); core.copy_(khi, b); core.copy_(ilo, c); core.copy_(ihi, d)
      j = j // 2
    end
    k = k * 2
  end
  return M > n and core.clone(core.narrow(idx, 1, 1, n)) or idx
end

local Tensors = {}
Tensors.__index = Tensors
Tensors.__name = "moonflow.data.Tensors"

-- The next n rows of the current epoch's permutation; a new epoch (a new
-- permutation, drawn on the device) starts when fewer than n rows are left.
-- With a generator given, n rows drawn with replacement instead, leaving the
-- epoch alone. Sources with flips mirror each drawn image left-right with
-- probability 1/2 (see flip_rows). When the source's generator is in shard
-- mode (rows first+1 .. first+n of global batches of `total`), the batch is
-- those rows of the global batch, and the epoch advances by `total`.
function Tensors:batch(n, g)
  check_n("batch", n)
  local N = self.size
  local idx
  if g then
    idx = g:randint({ n }, 0, N)
  else
    local s = self.generator.sharding and self.generator:sharding()
    local first, total = 0, n
    if s then
      if n ~= s.count then
        fail("batch", "batch of %d while the generator draws rows %d..%d of %d (shard mode)", n, s.first + 1,
          s.first + s.count, s.total)
      end
      first, total = s.first, s.total
    end
    if total > N then fail("batch", "batch of %d from a dataset of %d rows (without replacement)", total, N) end
    if not self.perm or self.pos + total > N then self:_new_epoch() end
    idx = core.narrow(self.perm, 1, self.pos + first + 1, n)
    self.pos = self.pos + total
  end
  return A.no_grad(function()
    local x = self.x:index_select(1, idx)
    if self.flip then x = self:_flip_rows(x, g or self.generator) end
    if self.labels then return x, self.labels:index_select(1, idx) end
    return x
  end)
end

-- x {n, ..., W} with each row mirrored along the last dim with probability
-- 1/2: one gather with column index w + f (W - 1 - 2 w), f in {0, 1} per row
function Tensors:_flip_rows(x, g)
  local s = x:shape()
  local n, W = s[1], s[#s]
  local f = core.to(core.binary("lt", g:uniform({ n }), 0.5), "i32")
  local bshape = { n }
  for i = 2, #s do bshape[i] = 1 end
  local wshape = { 1 }
  for i = 2, #s - 1 do wshape[i] = 1 end
  wshape[#s] = W
  local w = core.reshape(core.arange(W, 0, 1, "i32"), wshape)
  local span = core.reshape(core.arange(W, W - 1, -2, "i32"), wshape) -- W - 1 - 2 w
  local col = core.binary("add", w, core.binary("mul", core.reshape(f, bshape), span))
  return core.gather(x, #s, core.contiguous(core.expand(col, s)))
end

function Tensors:_new_epoch()
  self.epoch_state = self.generator:get_state()
  if self.shuffle then
    self.perm = D.permutation(self.generator, self.size)
  else
    self.perm = core.arange(self.size, 0, 1, "i32")
  end
  self.pos = 0
end

-- the whole set: x (and the labels), unshuffled and unflipped
function Tensors:all()
  if self.labels then return self.x, self.labels end
  return self.x
end

-- the epoch's permutation is redrawn from the generator state it began with
function Tensors:get_state()
  return { pos = self.pos, epoch = self.epoch_state, generator = self.generator:get_state() }
end

function Tensors:set_state(s)
  if s.epoch then
    self.generator:set_state(s.epoch)
    self:_new_epoch()
    self.pos = s.pos
  else
    self.perm, self.pos = nil, 0
  end
  self.generator:set_state(s.generator)
end

-- tensors(x[, {labels = y, shuffle = true, flip = false, generator | rngs}]):
-- minibatches of rows of x
function D.tensors(x, opts)
  opts = opts or {}
  if not A.is_tensor(x) or x:dim() < 1 then fail("tensors", "x must be a tensor with a leading sample dim") end
  local N = x:shape()[1]
  if N < 1 then fail("tensors", "x has no rows") end
  local y = opts.labels
  if y ~= nil and (not A.is_tensor(y) or y:shape()[1] ~= N) then
    fail("tensors", "labels must be a tensor with %d rows, got %s", N, A.is_tensor(y) and ("{" .. table.concat(y:shape(), ", ") .. "}") or type(y))
  end
  if opts.flip and x:dim() < 2 then fail("tensors", "flip needs rows of at least one dim, x has shape {%d}", N) end
  local shape = x:shape()
  table.remove(shape, 1)
  local dim = 1
  for _, d in ipairs(shape) do dim = dim * d end
  return setmetatable({ name = opts.name or "tensors", x = x, labels = y, size = N, n = N, dim = dim, shape = shape,
    shuffle = opts.shuffle ~= false, flip = opts.flip and true or false, generator = generator_of(opts), pos = 0 }, Tensors)
end

-- npy(path[, {labels = path_or_tensor, ...}]): an .npy array (f32) and optional i32 labels
function D.npy(path, opts)
  opts = opts or {}
  local x = IO.load_npy(path)
  local o = setmetatable({ labels = opts.labels }, { __index = opts })
  if type(opts.labels) == "string" then o.labels = IO.load_npy(opts.labels, { dtype = "i32" }) end
  return D.tensors(x, o)
end

-- idx(path[, {labels = path_or_tensor, ...}]): IDX images in [-1, 1] and labels
function D.idx(path, opts)
  opts = opts or {}
  local x = IO.load_idx(path)
  local o = setmetatable({ labels = opts.labels }, { __index = opts })
  if type(opts.labels) == "string" then o.labels = IO.load_idx(opts.labels, { dtype = "i32" }) end
  return D.tensors(x, o)
end

-- Debian's dataset-fashion-mnist package puts the files here
D.fashion_mnist_dir = "/usr/share/datasets/fashion-mnist"

-- fashion_mnist{split = "train" | "test", path = dir (alias dir), flip = false,
-- rngs | generator, shuffle = true}: the whole split on the device, x
-- {N, 1, 28, 28} f32 in [-1, 1] (v / 127.5 - 1), y i32 labels 0..9;
-- :batch(n) -> x {n, 1, 28, 28}, y {n}; :all() -> the whole split; fields
-- n, shape {1, 28, 28}, dim 784, num_classes 10.
function D.fashion_mnist(opts)
  opts = opts or {}
  if type(opts) ~= "table" then fail("fashion_mnist", "options must be a table, got %s", type(opts)) end
  local dir = opts.path or opts.dir or D.fashion_mnist_dir
  if type(dir) ~= "string" then fail("fashion_mnist", "path must be a directory name, got %s", type(dir)) end
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then fail("fashion_mnist", "split must be \"train\" or \"test\", got %s", tostring(split)) end
  local pre = split == "train" and "train" or "t10k"
  local images = ("%s/%s-images-idx3-ubyte.gz"):format(dir, pre)
  local labels = ("%s/%s-labels-idx1-ubyte.gz"):format(dir, pre)
  for _, f in ipairs { images, labels } do
    local h = io.open(f, "rb")
    if not h then
      fail("fashion_mnist", "%s not found: install Debian's dataset-fashion-mnist package "
        .. "(apt-get install dataset-fashion-mnist) or pass path = the folder of the IDX files", f)
    end
    h:close()
  end
  local x = IO.load_idx(images)
  local y = IO.load_idx(labels, { dtype = "i32" })
  local xs, ys = x:shape(), y:shape()
  if #xs ~= 3 or xs[2] ~= 28 or xs[3] ~= 28 or #ys ~= 1 or ys[1] ~= xs[1] then
    fail("fashion_mnist", "%s and %s hold shapes {%s} and {%s}, expected {N, 28, 28} and {N}", images, labels,
      table.concat(xs, ", "), table.concat(ys, ", "))
  end
  local o = setmetatable({ labels = y, name = "fashion_mnist" }, { __index = opts })
  local src = D.tensors(core.reshape(x, { xs[1], 1, 28, 28 }), o)
  src.num_classes, src.split, src.path = 10, split, dir
  return src
end

---------------------------------------------------------------- by name
-- toy(name, opts): any source by name: the toy sets, "mixture" (opts.mixture
-- or opts.means/stds/weights), "npy" and "idx" (opts.path), "fashion_mnist".
-- The generator is opts.generator, else opts.rngs.data, else the default.
function D.toy(name, opts)
  opts = opts or {}
  if type(opts) ~= "table" then fail("toy", "options must be a table, got %s", type(opts)) end
  if TOY[name] then return toy2d(name, opts) end
  if name == "mixture" or name == "gaussian_mixture" then return D.mixture(opts.mixture or opts, opts) end
  if name == "npy" then return D.npy(opts.path, opts) end
  if name == "idx" then return D.idx(opts.path, opts) end
  if name == "fashion_mnist" then return D.fashion_mnist(opts) end
  fail("toy", "unknown data set %s (%s, mixture, npy, idx, fashion_mnist)", tostring(name), table.concat(D.toy_sets, ", "))
end
D.source = D.toy

return D
