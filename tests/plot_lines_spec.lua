-- mf.plot.lines: several named series on one axis (e.g. FD against step for
-- two runs), markers at the points, a legend, horizontal reference lines.
local mf = require "moonflow"
local H = require "helpers"

local dir = H.tmpdir()

local function reader(path)
  local w, h, c, bytes = mf.core.read_png(path)
  return function(x, y)
    local i = (math.floor(y) * w + math.floor(x)) * c
    return { bytes:byte(i + 1, i + c) }
  end, w, h
end

-- whether a pixel of the 3x3 block around (x, y) has the color
local function near(px, x, y, color)
  for dy = -1, 1 do
    for dx = -1, 1 do
      local p = px(x + dx, y + dy)
      if p[1] == color[1] and p[2] == color[2] and p[3] == color[3] then return true end
    end
  end
  return false
end

describe("plot.lines", function()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

  local series = {
    { name = "sit", points = { { 0, 1 }, { 10, 3 } } },
    { name = "repa", points = { { 0, 2 }, { 10, 1 }, { 20, 0.5 } } },
  }

  it("draws each series in its colour through its points, with a legend", function()
    local path = dir .. "/lines.png"
    local p, lay = mf.plot.lines(path, series, { title = "FD", xlabel = "step", ylabel = "FD", width = 500,
      height = 360 })
    assert.are.equal(path, p)
    local px, w, h = reader(path)
    assert.are.same({ 500, 360 }, { w, h })
    -- x: the points' range; y: theirs widened by 5% of it on both sides
    assert.are.same({ 0, 20 }, lay.xrange)
    H.close(lay.yrange, { 0.5 - 0.125, 3 + 0.125 }, 1e-12)
    local r = lay.rect
    local function at(x, y)
      return r[1] + (x - lay.xrange[1]) / (lay.xrange[2] - lay.xrange[1]) * (r[3] - r[1]),
        r[4] - (y - lay.yrange[1]) / (lay.yrange[2] - lay.yrange[1]) * (r[4] - r[2])
    end
    for i, s in ipairs(series) do
      local color = mf.plot.palette[i]
      for _, q in ipairs(s.points) do
        local x, y = at(q[1], q[2])
        assert.are.same(color, px(x, y), ("%s at (%g, %g)"):format(s.name, q[1], q[2]))
      end
      -- the segment between the first two points, at its middle
      local x, y = at((s.points[1][1] + s.points[2][1]) / 2, (s.points[1][2] + s.points[2][2]) / 2)
      assert.is_true(near(px, x, y, color), s.name .. " segment")
      -- the legend's swatch
      local sw = lay.legend[i]
      assert.are.same(color, px(sw[1], sw[2]), s.name .. " legend")
    end
    assert.are.same({ 255, 255, 255 }, px(at(17, 2.6))) -- no series there
  end)

  it("draws reference lines across the frame and widens the range to them", function()
    local path = dir .. "/hline.png"
    local _, lay = mf.plot.lines(path, series, { hlines = { { y = 0.25, label = "floor" } } })
    H.close(lay.yrange, { 0.25 - 0.1375, 3 + 0.1375 }, 1e-12)
    local px = reader(path)
    local r = lay.rect
    local y = r[4] - (0.25 - lay.yrange[1]) / (lay.yrange[2] - lay.yrange[1]) * (r[4] - r[2])
    -- dashed: among 12 pixels in a row, some are the reference colour
    local hits = 0
    for x = math.floor((r[1] + r[3]) / 2), math.floor((r[1] + r[3]) / 2) + 11 do
      if near(px, x, y, mf.plot.colors.reference) then hits = hits + 1 end
    end
    assert.is_true(hits >= 4, tostring(hits))
  end)

  it("log = true places the points at log10 of their values; NaN points are skipped", function()
    local path = dir .. "/log.png"
    local s = { { name = "a", points = { { 1, 0.1 }, { 2, 0 / 0 }, { 3, 10 } } } }
    local _, lay = mf.plot.lines(path, s, { log = true })
    H.close(lay.yrange, { -1 - 0.1, 1 + 0.1 }, 1e-12)
    local px = reader(path)
    local r = lay.rect
    assert.are.same(mf.plot.palette[1], px(r[3], r[2] + 0.1 / 2.2 * (r[4] - r[2])))
  end)

  it("rejects bad series with errors naming the function and the values", function()
    local path = dir .. "/bad.png"
    local function err(fn)
      local ok, e = pcall(fn)
      assert.is_false(ok)
      return e
    end
    assert.truthy(err(function() mf.plot.lines(path, {}) end):find(
      "moonflow.plot.lines: series must be a non-empty list of {name, points}", 1, true))
    assert.truthy(err(function() mf.plot.lines(path, { { name = "x", points = { { 1, "a" } } } }) end):find(
      "moonflow.plot.lines: series 1 (x) point 1 is not a pair of numbers", 1, true))
    assert.truthy(err(function() mf.plot.lines(path, { { name = "x", points = {} } }) end):find(
      "moonflow.plot.lines: series 1 (x) has no points", 1, true))
    assert.truthy(err(function() mf.plot.lines("", series) end):find("moonflow.plot.lines: path", 1, true))
  end)
end)
