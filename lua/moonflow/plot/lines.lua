-- mf.plot.lines(path, series, opts): several named series on one axis, each
-- a polyline in its own colour (mf.plot.palette) with a marker at every
-- point and a legend entry; dashed horizontal reference lines (hlines).
local Canvas = require "moonflow.plot.canvas"

local L = {}

local function fail(fmt, ...) error(("moonflow.plot.lines: " .. fmt):format(...), 3) end

local function finite(v) return v == v and v > -math.huge and v < math.huge end

-- series = {{name = "sit", points = {{x, y}, ...}}, ...};
-- opts: title, xlabel, ylabel, log (log10 y axis), width = 640, height = 400,
-- hlines = {{y =, label =}, ...}. Points whose y is not finite (or not
-- positive on a log axis) are skipped and break the line. Returns the path and
-- the layout {rect, xrange, yrange (log10 units on a log axis), legend =
-- {{x, y} of each swatch}}.
function L.draw(P, path, series, opts)
  opts = opts or {}
  if type(path) ~= "string" or path == "" then fail("path must be a non-empty string, got %s", tostring(path)) end
  if type(series) ~= "table" or #series == 0 then fail("series must be a non-empty list of {name, points}") end
  local log = opts.log
  local function ty(v)
    if log then return v > 0 and math.log(v, 10) or nil end
    return v
  end
  local xlo, xhi, lo, hi = math.huge, -math.huge, math.huge, -math.huge
  local function cover(t) if t and finite(t) then lo, hi = math.min(lo, t), math.max(hi, t) end end
  for i, s in ipairs(series) do
    if type(s) ~= "table" or type(s.points) ~= "table" then fail("series %d must be {name =, points =}", i) end
    local name = tostring(s.name)
    if #s.points == 0 then fail("series %d (%s) has no points", i, name) end
    for k, q in ipairs(s.points) do
      if type(q) ~= "table" or type(q[1]) ~= "number" or type(q[2]) ~= "number" or not finite(q[1]) then
        fail("series %d (%s) point %d is not a pair of numbers", i, name, k)
      end
      xlo, xhi = math.min(xlo, q[1]), math.max(xhi, q[1])
      cover(ty(q[2]))
    end
  end
  for k, hl in ipairs(opts.hlines or {}) do
    if type(hl) ~= "table" or type(hl.y) ~= "number" then fail("hlines[%d] must be {y = number, label =}", k) end
    cover(ty(hl.y))
  end
  if lo > hi then lo, hi = 0, 1 end
  if hi - lo < 1e-12 then lo, hi = lo - 0.5, hi + 0.5 end
  local pad = 0.05 * (hi - lo)
  local yr = { lo - pad, hi + pad }
  local xr = { xlo, xhi }
  if xr[2] <= xr[1] then xr = { xr[1] - 0.5, xr[1] + 0.5 } end

  local W, H = opts.width or 640, opts.height or 400
  local cv = Canvas.new(W, H)
  local rect = { 72, 30, W - 20, H - 48 }
  local fx, fy = P.frame(cv, rect, xr, yr, {
    title = opts.title, xlabel = opts.xlabel, ylabel = opts.ylabel,
    ylabel_fn = log and function(v) return ("%.3g"):format(10 ^ v) end or nil,
  })
  local col = P.colors
  for _, hl in ipairs(opts.hlines or {}) do
    local t = ty(hl.y)
    if t and finite(t) then
      local py = fy(t)
      for x = rect[1] + 1, rect[3] - 1, 8 do cv:line(x, py, math.min(x + 4, rect[3] - 1), py, col.reference, 1) end
      if hl.label then cv:text(rect[1] + 6, py - 12, tostring(hl.label), col.reference) end
    end
  end
  -- lines first, markers over them
  for i, s in ipairs(series) do
    local color = P.palette[(i - 1) % #P.palette + 1]
    local px, py
    for _, q in ipairs(s.points) do
      local t = ty(q[2])
      if t and finite(t) then
        local nx, ny = fx(q[1]), fy(t)
        if px then cv:line(px, py, nx, ny, color, 2) end
        px, py = nx, ny
      else
        px = nil
      end
    end
  end
  for i, s in ipairs(series) do
    local color = P.palette[(i - 1) % #P.palette + 1]
    for _, q in ipairs(s.points) do
      local t = ty(q[2])
      if t and finite(t) then cv:disc(fx(q[1]), fy(t), 3.5, color) end
    end
  end
  -- the legend: top right, one swatch and name a row
  local widest = 0
  for _, s in ipairs(series) do widest = math.max(widest, Canvas.text_width(tostring(s.name))) end
  local lx, ly = rect[3] - widest - 28, rect[2] + 8
  cv:fill_rect(lx - 6, ly - 5, rect[3] - 6, ly + 14 * #series - 2, { 255, 255, 255 })
  local legend = {}
  for i, s in ipairs(series) do
    local color = P.palette[(i - 1) % #P.palette + 1]
    cv:fill_rect(lx, ly, lx + 9, ly + 7, color)
    legend[i] = { lx + 4, ly + 4 }
    cv:text(lx + 16, ly - 1, tostring(s.name), col.text)
    ly = ly + 14
  end
  return cv:write(path), { rect = rect, xrange = xr, yrange = yr, legend = legend }
end

return L
