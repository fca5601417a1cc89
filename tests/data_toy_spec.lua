local mf = require "moonflow"
local H = require "helpers"

local N = 20000

-- sample means of f over the rows, with the 5-sigma half-width of each
-- (from the sample's own spread: se = sd / sqrt(n))
local function stats(rows, f)
  local s, s2 = 0, 0
  for _, r in ipairs(rows) do
    local v = f(r[1], r[2])
    s, s2 = s + v, s2 + v * v
  end
  local m = s / #rows
  local sd = math.sqrt(math.max(s2 / #rows - m * m, 0))
  return m, 5 * sd / math.sqrt(#rows) + 1e-6
end

local function check_moments(rows, expected)
  local fs = {
    mx = function(x) return x end, my = function(_, y) return y end,
    xx = function(x) return x * x end, yy = function(_, y) return y * y end,
    xy = function(x, y) return x * y end, rr = function(x, y) return x * x + y * y end,
  }
  for k, e in pairs(expected) do
    local m, tol = stats(rows, fs[k])
    if math.abs(m - e) > tol then
      error(("moment %s: sample %.5f, exact %.5f, 5 se %.5f"):format(k, m, e, tol), 2)
    end
  end
end

-- every point satisfies pred (points drawn with noise = 0), checked on all rows
local function all(rows, pred, what)
  for i, r in ipairs(rows) do
    if not pred(r[1], r[2]) then error(("%s: row %d = (%.6f, %.6f)"):format(what, i, r[1], r[2]), 2) end
  end
end

-- frequencies of the classes cls(x, y) -> 1..K are 1/K each within 5 sigma
local function uniform_classes(rows, K, cls, what)
  local count = {}
  for k = 1, K do count[k] = 0 end
  for i, r in ipairs(rows) do
    local c = cls(r[1], r[2])
    if not count[c] then error(("%s: row %d = (%.6f, %.6f) in no class"):format(what, i, r[1], r[2]), 2) end
    count[c] = count[c] + 1
  end
  local p = 1 / K
  local tol = 5 * math.sqrt(p * (1 - p) / #rows)
  for k = 1, K do
    if math.abs(count[k] / #rows - p) > tol then
      error(("%s: class %d has frequency %.4f, expected %.4f +- %.4f"):format(what, k, count[k] / #rows, p, tol), 2)
    end
  end
end

local function draw(name, opts)
  opts = opts or {}
  opts.generator = mf.Generator(opts.seed or 11)
  local src = mf.data.toy(name, opts)
  local x = src:batch(N)
  assert.are.same({ N, 2 }, x:shape())
  assert.are.equal("f32", x:dtype())
  return x:totable(), src
end

local eps = 2e-5 -- f32 rounding of points of size ~3

describe("data.toy", function()
  it("two_moons: moments of the centred moons and their support", function()
    local s = 0.05
    local rows = draw("two_moons")
    check_moments(rows, { mx = 0, my = 0, xx = 0.75 + s * s, yy = 0.5625 - 1 / math.pi + s * s, xy = 0.125 - 1 / math.pi })
    rows = draw("two_moons", { noise = 0 })
    -- upper: |(x, y) + (1/2, 1/4)| = 1 with y + 1/4 >= 0; lower: |(x, y) - (1/2, 1/4)| = 1, y <= 1/4
    all(rows, function(x, y)
      local up = math.abs(math.sqrt((x + 0.5) ^ 2 + (y + 0.25) ^ 2) - 1) < eps and y + 0.25 >= -eps
      local lo = math.abs(math.sqrt((x - 0.5) ^ 2 + (y - 0.25) ^ 2) - 1) < eps and y - 0.25 <= eps
      return up or lo
    end, "on a moon")
    uniform_classes(rows, 2, function(x, y)
      return math.abs(math.sqrt((x + 0.5) ^ 2 + (y + 0.25) ^ 2) - 1) < eps and y + 0.25 >= -eps and 1 or 2
    end, "moon")
  end)

  it("checkerboard: the 8 even cells of [-2, 2)^2, equally likely, and their moments", function()
    local rows = draw("checkerboard")
    -- cell centres (cx + 1/2, cy + 1/2) average to E[xy] = 1/4; E[x^2] = E[y^2] = 1.25 + 1/12
    check_moments(rows, { mx = 0, my = 0, xx = 4 / 3, yy = 4 / 3, xy = 0.25 })
    all(rows, function(x, y)
      return x >= -2 and x < 2 and y >= -2 and y < 2 and (math.floor(x) + math.floor(y)) % 2 == 0
    end, "in an even cell")
    uniform_classes(rows, 8, function(x, y)
      local cx, cy = math.floor(x) + 2, math.floor(y) + 2 -- 0..3
      return cx * 2 + cy // 2 + 1
    end, "cell")
  end)

  it("eight_gaussians: centres on the circle, std as asked", function()
    local r, s = 2, 0.2
    local rows = draw("eight_gaussians")
    check_moments(rows, { mx = 0, my = 0, xx = r * r / 2 + s * s, yy = r * r / 2 + s * s, xy = 0 })
    rows = draw("eight_gaussians", { noise = 0, radius = 3 })
    uniform_classes(rows, 8, function(x, y)
      for k = 0, 7 do
        local a = 2 * math.pi * k / 8
        if math.abs(x - 3 * math.cos(a)) < eps and math.abs(y - 3 * math.sin(a)) < eps then return k + 1 end
      end
    end, "centre")
  end)

  it("spirals: two arms r = theta / 3 with E|x|^2 = pi^2 / 2 + 2 s^2", function()
    local s = 0.1
    local rows = draw("spirals")
    check_moments(rows, { mx = 0, my = 0, rr = math.pi ^ 2 / 2 + 2 * s * s })
    rows = draw("spirals", { noise = 0 })
    -- theta = 3 |x|; the point is +-(-theta cos theta, theta sin theta) / 3
    uniform_classes(rows, 2, function(x, y)
      local th = 3 * math.sqrt(x * x + y * y)
      local px, py = -th * math.cos(th) / 3, th * math.sin(th) / 3
      if th > 3 * math.pi + 1e-4 then return nil end
      if math.abs(x - px) < 1e-4 and math.abs(y - py) < 1e-4 then return 1 end
      if math.abs(x + px) < 1e-4 and math.abs(y + py) < 1e-4 then return 2 end
    end, "arm")
  end)

  it("rings: radii k r0, equally likely, uniform angle", function()
    local r0, K, s = 0.5, 4, 0.05
    local rows = draw("rings")
    local er2 = r0 * r0 * (K + 1) * (2 * K + 1) / 6
    check_moments(rows, { mx = 0, my = 0, xx = er2 / 2 + s * s, yy = er2 / 2 + s * s, xy = 0 })
    rows = draw("rings", { noise = 0, radius = 1, rings = 3 })
    uniform_classes(rows, 3, function(x, y)
      local r = math.sqrt(x * x + y * y)
      local k = math.floor(r + 0.5)
      if math.abs(r - k) < eps then return k end
    end, "ring")
    check_moments(rows, { mx = 0, my = 0, xy = 0 })
  end)

  it("draws from rngs.data, reproducibly, and advances the stream", function()
    local a = mf.data.toy("two_moons", { rngs = mf.Rngs(5) })
    local b = mf.data.toy("two_moons", { rngs = mf.Rngs(5) })
    local x1, x2 = a:batch(64):totable(), a:batch(64):totable()
    H.close(b:batch(64):totable(), x1, 0, 0)
    assert.are_not.same(x1, x2)
    local rngs = mf.Rngs(5)
    local c = mf.data.toy("two_moons", { rngs = rngs })
    local before = rngs.data:get_state().offset
    c:batch(8)
    assert.is_true(rngs.data:get_state().offset > before)
    -- an explicit generator leaves the source's own stream alone
    local st = c:get_state()
    c:batch(8, mf.Generator(1))
    assert.are.same(st, c:get_state())
  end)

  it("rejects unknown sets and bad options", function()
    H.errors(function() mf.data.toy("moons") end, "moonflow.data.toy", "unknown data set moons", "two_moons")
    H.errors(function() mf.data.toy("rings", { rings = 0 }) end, "moonflow.data.toy", "rings")
    H.errors(function() mf.data.toy("spirals", { noise = -1 }) end, "moonflow.data.toy", "noise", "-1")
    H.errors(function() mf.data.toy("two_moons"):batch(0) end, "moonflow.data.batch", "positive integer")
  end)
end)

describe("data.mixture", function()
  it("samples an oracle GaussianMixture with its weights and labels", function()
    local src = mf.data.toy("mixture", { means = { { -2, 0 }, { 3, 1 } }, stds = { 0.5, 1 }, weights = { 1, 3 },
      generator = mf.Generator(3) })
    assert.are.equal(2, src.dim)
    local x, y = src:batch(N)
    local rows, lab = x:totable(), y:totable()
    local w = 0
    for _, l in ipairs(lab) do w = w + l end
    local p = 0.75
    assert.is_true(math.abs(w / N - p) < 5 * math.sqrt(p * (1 - p) / N))
    -- E[x] = 0.25 (-2) + 0.75 (3), E[y] = 0.75; E[x^2] = sum w (mu^2 + s^2)
    check_moments(rows, { mx = 1.75, my = 0.75, xx = 0.25 * (4 + 0.25) + 0.75 * (9 + 1) })
  end)
end)

describe("data.tensors", function()
  it("serves each row once per epoch in shuffled order, labels paired", function()
    local n = 10
    local x = mf.arange(n * 2):reshape({ n, 2 })
    local y = mf.arange(n, { dtype = "i32" })
    local src = mf.data.tensors(x, { labels = y, generator = mf.Generator(4) })
    assert.are.equal(2, src.dim)
    local seen, order = {}, {}
    for _ = 1, 2 do
      local xb, yb = src:batch(5)
      for i, row in ipairs(xb:totable()) do
        local lab = yb:totable()[i]
        assert.are.same({ 2 * lab, 2 * lab + 1 }, row)
        assert.is_nil(seen[lab])
        seen[lab] = true
        order[#order + 1] = lab
      end
    end
    local sorted = { table.unpack(order) }
    table.sort(sorted)
    assert.are.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, sorted)
    assert.are_not.same(sorted, order) -- shuffled (10! orders; identity has chance 1/3628800)
    -- a batch that does not fit the rest of the epoch starts a new one
    local st = src:get_state()
    local a = src:batch(4):totable()
    local b = src:batch(8):totable()
    src:set_state(st)
    H.close(src:batch(4):totable(), a, 0, 0)
    H.close(src:batch(8):totable(), b, 0, 0)
    H.errors(function() src:batch(11) end, "moonflow.data.batch", "batch of 11 from a dataset of 10 rows")
    -- with a generator, rows are drawn with replacement: any n, every row a row of x
    local xb, yb = src:batch(25, mf.Generator(2))
    assert.are.same({ 25, 2 }, xb:shape())
    for i, row in ipairs(xb:totable()) do
      local lab = yb:totable()[i]
      assert.is_true(lab >= 0 and lab < n)
      assert.are.same({ 2 * lab, 2 * lab + 1 }, row)
    end
  end)

  it("loads npy and IDX files into sources", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute(("mkdir -p %q"):format(dir))
    local img = string.char(0, 0, 8, 3) .. string.pack(">I4>I4>I4", 3, 2, 2) .. string.char(0, 255, 0, 255, 51, 51, 51, 51, 255, 255, 255, 255)
    mf.core.write_file(dir .. "/x-idx3-ubyte.gz", img, true)
    mf.core.write_file(dir .. "/y-idx1-ubyte", string.char(0, 0, 8, 1) .. string.pack(">I4", 3) .. string.char(4, 5, 6))
    local src = mf.data.toy("idx", { path = dir .. "/x-idx3-ubyte.gz", labels = dir .. "/y-idx1-ubyte",
      generator = mf.Generator(0), shuffle = false })
    assert.are.same({ 2, 2 }, src.shape)
    assert.are.equal(4, src.dim)
    local x, y = src:batch(3)
    assert.are.same({ 4, 5, 6 }, y:totable())
    H.close(x:totable(), { { { -1, 1 }, { -1, 1 } }, { { -0.6, -0.6 }, { -0.6, -0.6 } }, { { 1, 1 }, { 1, 1 } } }, 1e-6, 1e-6)
    os.execute(("rm -rf %q"):format(dir))
  end)

  it("names the Debian package when Fashion-MNIST is missing", function()
    H.errors(function() mf.data.fashion_mnist({ dir = "/nonexistent" }) end, "moonflow.data.fashion_mnist",
      "/nonexistent/train-images-idx3-ubyte.gz", "dataset-fashion-mnist")
  end)
end)
