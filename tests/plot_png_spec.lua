local mf = require "moonflow"
local H = require "helpers"

local dir = H.tmpdir()

-- PNG signature and IHDR fields read with string.unpack
local function ihdr(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read(33)
  f:close()
  assert.are.equal("\137PNG\r\n\26\n", s:sub(1, 8))
  local len, typ, w, h, depth, color = string.unpack(">I4c4I4I4BB", s, 9)
  assert.are.equal(13, len)
  assert.are.equal("IHDR", typ)
  return w, h, depth, color
end

-- pixel (x, y), 0-based, of a PNG read back through libpng
local function reader(path)
  local w, h, c, bytes = mf.core.read_png(path)
  return function(x, y)
    local i = (math.floor(y) * w + math.floor(x)) * c
    return { bytes:byte(i + 1, i + c) }
  end, w, h, c
end

describe("plot", function()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

  it("scatter draws samples over the reference at their coordinates", function()
    local path = dir .. "/scatter.png"
    local x = mf.tensor({ { 0.5, 0.5 }, { 5, 5 } }) -- the second point lies outside the range
    local ref = mf.tensor({ { 0.25, 0.75 } })
    local p, lay = mf.plot.scatter(path, x, { reference = ref, range = { 0, 1, 0, 1 }, size = 300, radius = 3, alpha = 1,
      title = "t" })
    assert.are.equal(path, p)
    assert.are.equal(1, lay.outside)
    local w, h, depth, color = ihdr(path)
    assert.are.same({ 300, 300, 8, 2 }, { w, h, depth, color }) -- 8-bit RGB
    local px = reader(path)
    local r = lay.rect
    local function at(u, v) return px(r[1] + u * (r[3] - r[1]), r[4] - v * (r[4] - r[2])) end
    assert.are.same(mf.plot.colors.sample, at(0.5, 0.5))
    assert.are.same(mf.plot.colors.reference, at(0.25, 0.75))
    assert.are.same({ 255, 255, 255 }, at(0.7, 0.3)) -- empty plot area, between grid lines
    assert.are.same(mf.plot.colors.axis, px(r[1], (r[2] + r[4]) / 2)) -- the frame
  end)

  it("scatter's default range covers the reference with one scale on both axes", function()
    local path = dir .. "/auto.png"
    local ref = mf.tensor({ { -2, -1 }, { 2, 1 } })
    local _, lay = mf.plot.scatter(path, ref, { reference = ref })
    local r = lay.rect
    local sx = (lay.xrange[2] - lay.xrange[1]) / (r[3] - r[1])
    local sy = (lay.yrange[2] - lay.yrange[1]) / (r[4] - r[2])
    H.close(sx, sy, 1e-12)
    assert.is_true(lay.xrange[1] < -2 and lay.xrange[2] > 2 and lay.yrange[1] < -1 and lay.yrange[2] > 1)
    assert.are.equal(0, lay.outside)
  end)

  it("grid lays out gray images with exact pixel values", function()
    local path = dir .. "/grid.png"
    -- 3 images of 2x3 with values k/255 (range {0, 1}), 2 per row, 1-pixel padding of 40
    local vals = {}
    for i = 1, 3 * 2 * 3 do vals[i] = (i * 13) % 256 end
    local imgs = mf.tensor(vals):reshape({ 3, 2, 3 }) / 255
    mf.plot.grid(path, imgs, { range = { 0, 1 }, nrow = 2, pad = 1, scale = 1 })
    local w, h, depth, color = ihdr(path)
    assert.are.same({ 2 * 3 + 3, 2 * 2 + 3, 8, 0 }, { w, h, depth, color }) -- 8-bit gray
    local px = reader(path)
    for n = 0, 2 do
      local ox, oy = 1 + (n % 2) * 4, 1 + (n // 2) * 3
      for y = 0, 1 do
        for x = 0, 2 do
          assert.are.same({ vals[n * 6 + y * 3 + x + 1] }, px(ox + x, oy + y))
        end
      end
    end
    assert.are.same({ 40 }, px(0, 0))
    assert.are.same({ 40 }, px(5, 5)) -- the empty fourth cell
  end)

  it("grid writes RGB for 3 channels, clamps to the range and upsamples", function()
    local path = dir .. "/rgb.png"
    -- one {3, 1, 2} image: channel c, column x; values in [-1, 1] and beyond
    local img = mf.tensor({ { { { -1, 1 } }, { { 0, 2 } }, { { -3, 0.5 } } } })
    mf.plot.grid(path, img, { pad = 0, scale = 2 })
    local w, h, _, color = ihdr(path)
    assert.are.same({ 4, 2, 2 }, { w, h, color })
    local px = reader(path)
    -- round(255 (v + 1) / 2): -1 -> 0, 1 -> 255, 0 -> 128, 2 -> 255 (clamped), -3 -> 0, 0.5 -> 191
    assert.are.same({ 0, 128, 0 }, px(0, 0))
    assert.are.same({ 0, 128, 0 }, px(1, 1))
    assert.are.same({ 255, 255, 191 }, px(2, 0))
    assert.are.same({ 255, 255, 191 }, px(3, 1))
  end)

  it("curve draws the polyline through the points", function()
    local path = dir .. "/curve.png"
    local pts = { { 100, 3 }, { 200, 2 }, { 300, 2.5 }, { 400, 1 } }
    local _, lay = mf.plot.curve(path, pts, { title = "loss", xlabel = "step", width = 400, height = 300 })
    local w, h = ihdr(path)
    assert.are.same({ 400, 300 }, { w, h })
    local px = reader(path)
    local r = lay.rect
    local function map(x, y)
      return r[1] + (x - lay.xrange[1]) / (lay.xrange[2] - lay.xrange[1]) * (r[3] - r[1]),
          r[4] - (y - lay.yrange[1]) / (lay.yrange[2] - lay.yrange[1]) * (r[4] - r[2])
    end
    assert.are.same({ 100, 400 }, lay.xrange)
    for _, p in ipairs(pts) do
      local x, y = map(p[1], p[2])
      assert.are.same(mf.plot.colors.curve, px(math.floor(x + 0.5), math.floor(y + 0.5)))
    end
    -- midway along the second segment
    local x, y = map(250, 2.25)
    assert.are.same(mf.plot.colors.curve, px(math.floor(x + 0.5), math.floor(y + 0.5)))
    -- a tensor of values works too
    mf.plot.curve(path, mf.tensor({ 1, 0.5, 0.25 }), { log = true })
    local w2, h2 = ihdr(path)
    assert.are.same({ 640, 400 }, { w2, h2 })
  end)

  it("survives NaN and infinite values from a diverged model", function()
    local bad = mf.tensor({ { 0, 0 }, { 1, 1 } }) / mf.tensor({ { 0, 0 }, { 1, 1 } }) -- NaN row, then (1, 1)
    local _, lay = mf.plot.scatter(dir .. "/nan.png", bad, { reference = mf.tensor({ { 0, 0 }, { 2, 2 } }) })
    assert.are.equal(1, lay.outside)
    mf.plot.grid(dir .. "/nan_grid.png", mf.tensor({ { 0, 0 } }):reshape({ 1, 1, 2 }) / 0 - mf.tensor({ 1, 0 }):reshape({ 1, 1, 2 }) / 0,
      { pad = 0, scale = 1 })
    local px = reader(dir .. "/nan_grid.png")
    assert.are.same({ 0 }, px(0, 0)) -- NaN shows black
    mf.plot.curve(dir .. "/nan_curve.png", { 1, 0 / 0, math.huge, 2 })
    assert.are.equal(640, (ihdr(dir .. "/nan_curve.png")))
  end)

  it("rejects bad inputs with errors naming the function and values", function()
    H.errors(function() mf.plot.scatter(dir .. "/x.png", mf.zeros({ 3 })) end, "moonflow.plot.scatter", "{n, 2}", "{3}")
    H.errors(function() mf.plot.grid(dir .. "/x.png", mf.zeros({ 2, 2, 3, 3 })) end, "moonflow.plot.grid", "1 or 3 channels, got 2")
    H.errors(function() mf.plot.grid(dir .. "/x.png", mf.zeros({ 5 })) end, "moonflow.plot.grid", "{5}")
    H.errors(function() mf.plot.curve(dir .. "/x.png", {}) end, "moonflow.plot.curve", "no points")
    H.errors(function() mf.plot.curve(dir .. "/no/such/dir/x.png", { 1, 2 }) end, "moonflow.write_png", "no/such/dir/x.png")
    H.errors(function() mf.core.read_png(dir .. "/missing.png") end, "moonflow.read_png", "missing.png")
  end)
end)
