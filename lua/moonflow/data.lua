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
local Tensors = {}
Tensors.__index = Tensors
Tensors.__name = "moonflow.data.Tensors"

-- The next n rows of the current epoch's permutation; a new epoch (a new
-- permutation) starts when fewer than n rows are left. With a generator
-- given, n rows drawn with replacement instead, leaving the epoch alone.
function Tensors:batch(n, g)
  check_n("batch", n)
  local N = self.size
  local idx
  if g then
    idx = g:randint({ n }, 0, N)
  else
    if n > N then fail("batch", "batch of %d from a dataset of %d rows (without replacement)", n, N) end
    if not self.perm or self.pos + n > N then self:_new_epoch() end
    idx = core.narrow(self.perm, 1, self.pos + 1, n)
    self.pos = self.pos + n
  end
  return A.no_grad(function()
    local x = self.x:index_select(1, idx)
    if self.labels then return x, self.labels:index_select(1, idx) end
    return x
  end)
end

function Tensors:_new_epoch()
  self.epoch_state = self.generator:get_state()
  if self.shuffle then
    self.perm = self.generator:permutation(self.size)
  else
    self.perm = core.arange(self.size, 0, 1, "i32")
  end
  self.pos = 0
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

-- tensors(x[, {labels = y, shuffle = true, generator | rngs}]): minibatches of rows of x
function D.tensors(x, opts)
  opts = opts or {}
  if not A.is_tensor(x) or x:dim() < 1 then fail("tensors", "x must be a tensor with a leading sample dim") end
  local N = x:shape()[1]
  if N < 1 then fail("tensors", "x has no rows") end
  local y = opts.labels
  if y ~= nil and (not A.is_tensor(y) or y:shape()[1] ~= N) then
    fail("tensors", "labels must be a tensor with %d rows, got %s", N, A.is_tensor(y) and ("{" .. table.concat(y:shape(), ", ") .. "}") or type(y))
  end
  local shape = x:shape()
  table.remove(shape, 1)
  local dim = 1
  for _, d in ipairs(shape) do dim = dim * d end
  return setmetatable({ name = opts.name or "tensors", x = x, labels = y, size = N, dim = dim, shape = shape,
    shuffle = opts.shuffle ~= false, generator = generator_of(opts), pos = 0 }, Tensors)
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

-- fashion_mnist{split = "train" | "test", dir = ...}: {N, 28, 28} in [-1, 1], labels 0..9
function D.fashion_mnist(opts)
  opts = opts or {}
  local dir = opts.dir or D.fashion_mnist_dir
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then fail("fashion_mnist", "split must be \"train\" or \"test\", got %s", tostring(split)) end
  local pre = split == "train" and "train" or "t10k"
  local images = ("%s/%s-images-idx3-ubyte.gz"):format(dir, pre)
  local f = io.open(images, "rb")
  if not f then
    fail("fashion_mnist", "%s not found: install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or pass dir", images)
  end
  f:close()
  local o = setmetatable({ labels = ("%s/%s-labels-idx1-ubyte.gz"):format(dir, pre), name = "fashion_mnist" }, { __index = opts })
  local src = D.idx(images, o)
  src.num_classes = 10
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
