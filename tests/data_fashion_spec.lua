-- mf.data.fashion_mnist and the tensor sources' device shuffling and flips:
-- a fixture folder of small gzipped IDX files with known bytes (every value
-- checked against v / 127.5 - 1), the real Debian files where installed (a
-- known pixel against the raw IDX bytes, 1000 / 6000 labels per class),
-- epochs that visit every row once with no read back, exact mirror images,
-- the device permutation sorting its keys and uniform over the 3! orders,
-- and the missing-package error.
local mf = require "moonflow"
local H = require "helpers"

local REAL = "/usr/share/datasets/fashion-mnist"
local have_real = io.open(REAL .. "/t10k-labels-idx1-ubyte.gz", "rb")
if have_real then have_real:close() end

-- the byte of pixel (r, c) of image i (all 0-based) in the fixture
local function byte_of(i, r, c) return (i * 37 + r * 11 + c * 5 + r * c) % 256 end

local function idx_head(typ, shape)
  local s = string.char(0, 0, typ, #shape)
  for _, d in ipairs(shape) do s = s .. string.pack(">I4", d) end
  return s
end

-- a folder with train (N images, labels i % 10) and test (3 images) files
local function fixture(N)
  local dir = H.tmpdir()
  for _, sp in ipairs { { "train", N }, { "t10k", 3 } } do
    local pre, n = sp[1], sp[2]
    local px = {}
    for i = 0, n - 1 do
      for r = 0, 27 do
        for c = 0, 27 do px[#px + 1] = string.char(byte_of(i, r, c)) end
      end
    end
    local lab = {}
    for i = 0, n - 1 do lab[#lab + 1] = string.char(i % 10) end
    mf.core.write_file(dir .. "/" .. pre .. "-images-idx3-ubyte.gz", { idx_head(8, { n, 28, 28 }), table.concat(px) }, true)
    mf.core.write_file(dir .. "/" .. pre .. "-labels-idx1-ubyte.gz", { idx_head(8, { n }), table.concat(lab) }, true)
  end
  return dir
end

local function image_of(i) -- {1, 28, 28} in [-1, 1]
  local img = {}
  for r = 0, 27 do
    img[r + 1] = {}
    for c = 0, 27 do img[r + 1][c + 1] = byte_of(i, r, c) / 127.5 - 1 end
  end
  return { img }
end

local function mirrored(img)
  local out = {}
  for r = 1, 28 do
    out[r] = {}
    for c = 1, 28 do out[r][c] = img[1][r][29 - c] end
  end
  return { out }
end

local function same(a, b)
  for r = 1, 28 do
    for c = 1, 28 do if math.abs(a[1][r][c] - b[1][r][c]) > 1e-6 then return false end end
  end
  return true
end

describe("data.fashion_mnist", function()
  local dir
  setup(function() dir = fixture(10) end)
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

  it("loads a split onto the device: shapes, dtypes, fields and every value", function()
    local src = mf.data.fashion_mnist { path = dir, rngs = mf.Rngs(0) }
    assert.equal(10, src.n)
    assert.same({ 1, 28, 28 }, src.shape)
    assert.equal(784, src.dim)
    assert.equal(10, src.num_classes)
    local x, y = src:all()
    assert.same({ 10, 1, 28, 28 }, x:shape())
    assert.equal("f32", x:dtype())
    assert.equal("i32", y:dtype())
    assert.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, y:totable())
    local xt = x:totable()
    for i = 0, 9 do H.close(xt[i + 1], image_of(i), 0, 1e-6, "image " .. i) end
    local test = mf.data.fashion_mnist { split = "test", dir = dir } -- dir: an alias of path
    assert.equal(3, test.n)
    H.close((test:all()):totable()[3], image_of(2), 0, 1e-6)
    assert.equal(-1, x:min():item())
    assert.equal(1, x:max():item())
  end)

  it("serves every example once per epoch, shuffled on the device with nothing read back", function()
    local src = mf.data.fashion_mnist { path = dir, generator = mf.Generator(3) }
    mf.synchronize()
    mf.reset_stats()
    local xs, ys = {}, {}
    for k = 1, 2 do xs[k], ys[k] = src:batch(5) end
    local st = mf.stats()
    assert.equal(0, st.reads) -- the permutation, the rows and the labels never come to the host
    local order = {}
    for k = 1, 2 do
      local xt = xs[k]:totable()
      for b, lab in ipairs(ys[k]:totable()) do
        order[#order + 1] = lab
        H.close(xt[b], image_of(lab), 0, 1e-6, "row of label " .. lab)
      end
    end
    local sorted = { table.unpack(order) }
    table.sort(sorted)
    assert.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, sorted)
    assert.are_not.same(sorted, order)
    -- the state restores the epoch in the middle
    local s = src:get_state()
    local a = src:batch(3)
    local b = src:batch(9) -- a new epoch
    src:set_state(s)
    H.close(src:batch(3):totable(), a:totable(), 0, 0)
    H.close(src:batch(9):totable(), b:totable(), 0, 0)
  end)

  it("flips mirror whole images exactly, each with probability 1/2", function()
    local src = mf.data.fashion_mnist { path = dir, generator = mf.Generator(4), flip = true }
    local flipped, kept = 0, 0
    for _ = 1, 12 do
      local x, y = src:batch(10)
      local xt = x:totable()
      for b, lab in ipairs(y:totable()) do
        local img = image_of(lab)
        if same(xt[b], img) then kept = kept + 1
        elseif same(xt[b], mirrored(img)) then flipped = flipped + 1
        else error("row " .. b .. " is neither image " .. lab .. " nor its mirror") end
      end
    end
    -- 120 fair coins: 60 +- 5.5; 5 standard deviations
    assert.equal(120, flipped + kept)
    assert.is_true(math.abs(flipped - 60) <= 5 * math.sqrt(30), ("%d of 120 flipped"):format(flipped))
    -- without flip, never
    local plain = mf.data.fashion_mnist { path = dir, generator = mf.Generator(4) }
    local x, y = plain:batch(10)
    local xt = x:totable()
    for b, lab in ipairs(y:totable()) do assert.is_true(same(xt[b], image_of(lab))) end
  end)

  it("names the Debian package when the files are missing, and checks its options", function()
    H.errors(function() mf.data.fashion_mnist { path = "/nonexistent" } end, "moonflow.data.fashion_mnist",
      "/nonexistent/train-images-idx3-ubyte.gz not found", "dataset-fashion-mnist")
    H.errors(function() mf.data.toy("fashion_mnist", { path = "/nonexistent", split = "test" }) end,
      "/nonexistent/t10k-images-idx3-ubyte.gz", "dataset-fashion-mnist")
    H.errors(function() mf.data.fashion_mnist { path = dir, split = "val" } end, "split must be \"train\" or \"test\", got val")
    local bad = H.tmpdir()
    mf.core.write_file(bad .. "/train-images-idx3-ubyte.gz", { idx_head(8, { 2, 28, 28 }), string.rep("\0", 2 * 784) }, true)
    H.errors(function() mf.data.fashion_mnist { path = bad } end, "train-labels-idx1-ubyte.gz not found", "dataset-fashion-mnist")
    mf.core.write_file(bad .. "/train-labels-idx1-ubyte.gz", { idx_head(8, { 3 }), "\0\1\2" }, true)
    H.errors(function() mf.data.fashion_mnist { path = bad } end, "shapes {2, 28, 28} and {3}")
    os.execute(("rm -rf %q"):format(bad))
  end)

  it("reads Debian's files: a known pixel against the raw IDX bytes, 1000 labels per class", function()
    if not have_real then pending("dataset-fashion-mnist is not installed") return end
    local src = mf.data.fashion_mnist { split = "test" }
    assert.equal(10000, src.n)
    local x, y = src:all()
    local raw = mf.io.load_idx(REAL .. "/t10k-images-idx3-ubyte.gz", { scale = false })
    -- image 0, row 14 and image 9999, row 20: every column
    local rx, r2 = raw:narrow(1, 1, 1):totable()[1], raw:narrow(1, 10000, 1):totable()[1]
    local x0, x2 = x:narrow(1, 1, 1):totable()[1][1], x:narrow(1, 10000, 1):totable()[1][1]
    local nonzero = 0
    for c = 1, 28 do
      -- to f32 rounding (|x| <= 1: 6e-8)
      H.close(x0[15][c], rx[15][c] / 127.5 - 1, 0, 1.2e-7, "test image 0, row 14")
      H.close(x2[21][c], r2[21][c] / 127.5 - 1, 0, 1.2e-7, "test image 9999, row 20")
      if rx[15][c] > 0 then nonzero = nonzero + 1 end
    end
    assert.is_true(nonzero > 5) -- a row through the garment
    local counts = {}
    for _, l in ipairs(y:totable()) do counts[l] = (counts[l] or 0) + 1 end
    for c = 0, 9 do assert.equal(1000, counts[c]) end
    assert.equal(-1, x:min():item())
    assert.equal(1, x:max():item())
  end)
end)

describe("data.permutation", function()
  it("sorts its keys on the device: a permutation for any n, the keys in order", function()
    local g = mf.Generator(3)
    for _, n in ipairs { 1, 2, 3, 5, 17, 64, 1000, 4097 } do
      local st = g:get_state()
      local keys = g:randint({ n }, 0, 2147483647):totable()
      g:set_state(st)
      local p = mf.data.permutation(g, n):totable()
      assert.equal(n, #p)
      local seen = {}
      for i, v in ipairs(p) do
        assert.is_true(v >= 0 and v < n and not seen[v], ("n = %d: entry %d is %d"):format(n, i, v))
        seen[v] = true
        if i > 1 then assert.is_true(keys[v + 1] >= keys[p[i - 1] + 1], ("n = %d: keys out of order at %d"):format(n, i)) end
      end
    end
  end)

  it("draws each of the 3! orders with probability 1/6", function()
    local g = mf.Generator(9)
    local counts, n = {}, 600
    for _ = 1, n do
      local k = table.concat(mf.data.permutation(g, 3):totable(), "")
      counts[k] = (counts[k] or 0) + 1
    end
    local sd = math.sqrt(n / 6 * 5 / 6)
    for _, k in ipairs { "012", "021", "102", "120", "201", "210" } do
      assert.is_true(math.abs((counts[k] or 0) - n / 6) <= 5 * sd, ("%s drawn %d times of %d"):format(k, counts[k] or 0, n))
    end
  end)
end)
