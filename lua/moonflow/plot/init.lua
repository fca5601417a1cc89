-- mf.plot: PNG pictures (through libpng) of 2-D samples over reference
-- data, image grids and loss curves. Tensors are read back once and
-- rasterized on the host by moonflow.plot.canvas.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local Canvas = require "moonflow.plot.canvas"
local Font = require "moonflow.plot.font"

local P = {}

P.colors = {
  sample = { 31, 119, 180 }, reference = { 150, 150, 150 }, axis = { 40, 40, 40 },
  grid = { 232, 232, 232 }, text = { 20, 20, 20 }, curve = { 214, 39, 40 }, raw = { 240, 170, 170 },
}
-- the colours of the series of plot.lines, in order
P.palette = { { 31, 119, 180 }, { 214, 39, 40 }, { 44, 160, 44 }, { 148, 103, 189 }, { 255, 127, 14 },
  { 140, 86, 75 } }

local function fail(fn, fmt, ...) error(("moonflow.plot.%s: " .. fmt):format(fn, ...), 3) end

local function check_path(fn, path)
  if type(path) ~= "string" or path == "" then fail(fn, "path must be a non-empty string, got %s", tostring(path)) end
end

-- "nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of 10
function P.ticks(lo, hi, target)
  target = target or 5
  if not (hi > lo) then return { lo } end
  local raw = (hi - lo) / target
  local p = 10 ^ math.floor(math.log(raw, 10))
  local step = p
  for _, m in ipairs { 1, 2, 5, 10 } do
    step = m * p
    if step >= raw then break end
  end
  local out = {}
  for k = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) do out[#out + 1] = k * step end
  return out, step
end

local function label(v, step)
  if math.abs(v) < step * 1e-6 then return "0" end
  local s = ("%.4g"):format(v)
  return s
end

-- A plot frame: data range -> pixel mapping, axes with ticks and labels.
local function frame(cv, rect, xr, yr, opts)
  local x0, y0, x1, y1 = rect[1], rect[2], rect[3], rect[4]
  local fx = function(x) return x0 + (x - xr[1]) / (xr[2] - xr[1]) * (x1 - x0) end
  local fy = function(y) return y1 - (y - yr[1]) / (yr[2] - yr[1]) * (y1 - y0) end
  local col = P.colors
  local xt, xs = P.ticks(xr[1], xr[2], opts.xticks or 6)
  local yt, ys = P.ticks(yr[1], yr[2], opts.yticks or 6)
  for _, v in ipairs(xt) do cv:line(fx(v), y0, fx(v), y1, col.grid) end
  for _, v in ipairs(yt) do cv:line(x0, fy(v), x1, fy(v), col.grid) end
  cv:rect(x0, y0, x1, y1, col.axis)
  for _, v in ipairs(xt) do
    local px = fx(v)
    cv:line(px, y1, px, y1 + 4, col.axis)
    local s = opts.xlabel_fn and opts.xlabel_fn(v) or label(v, xs)
    cv:text(px - Canvas.text_width(s) / 2, y1 + 8, s, col.text)
  end
  for _, v in ipairs(yt) do
    local py = fy(v)
    cv:line(x0 - 4, py, x0, py, col.axis)
    local s = opts.ylabel_fn and opts.ylabel_fn(v) or label(v, ys)
    cv:text(x0 - 8 - Canvas.text_width(s), py - 5, s, col.text)
  end
  if opts.title then cv:text(x0, 8, opts.title, col.text) end
  if opts.xlabel then cv:text((x0 + x1 - Canvas.text_width(opts.xlabel)) / 2, y1 + 24, opts.xlabel, col.text) end
  if opts.ylabel then cv:text(4, y0 - 16 > 20 and y0 - 16 or 22, opts.ylabel, col.text) end
  return fx, fy
end

P.frame = frame -- (for plot/lines.lua)

-- lines(path, series, opts): several named series on one axis (plot/lines.lua)
function P.lines(path, series, opts) return require("moonflow.plot.lines").draw(P, path, series, opts) end

-- host rows {x, y} of a {n, 2} tensor (or a nested Lua table)
local function points(fn, x, what)
  if A.is_tensor(x) then
    local s = x:shape()
    if #s ~= 2 or s[2] < 2 then fail(fn, "%s must be {n, 2}, got {%s}", what, table.concat(s, ", ")) end
    if s[2] > 2 then x = x:narrow(2, 1, 2) end
    local flat = x:to("f32"):tolist()
    local out = {}
    for i = 1, #flat // 2 do out[i] = { flat[2 * i - 1], flat[2 * i] } end
    return out
  end
  if type(x) == "table" then return x end
  fail(fn, "%s must be a {n, 2} tensor, got %s", what, type(x))
end

local function extent(sets)
  local lo, hi = { math.huge, math.huge }, { -math.huge, -math.huge }
  for _, set in ipairs(sets) do
    for _, p in ipairs(set) do
      for d = 1, 2 do
        local v = p[d]
        if v == v and v > -math.huge and v < math.huge then
          if v < lo[d] then lo[d] = v end
          if v > hi[d] then hi[d] = v end
        end
      end
    end
  end
  for d = 1, 2 do
    if lo[d] > hi[d] then lo[d], hi[d] = -1, 1 end
    local pad = 0.05 * (hi[d] - lo[d])
    if pad == 0 then pad = 1 end
    lo[d], hi[d] = lo[d] - pad, hi[d] + pad
  end
  return { lo[1], hi[1] }, { lo[2], hi[2] }
end

-- scatter(path, x, {reference = y, range = {xmin, xmax, ymin, ymax}, size = 560,
--   title, radius = 1.6, alpha = 0.6, equal = true}): samples x {n, 2} in blue
-- over the reference data in gray. The range defaults to the reference's
-- extent (the samples' when there is none), widened so both axes share one
-- scale; points outside it are counted in the title. Returns the path and
-- the layout {rect = {x0, y0, x1, y1} pixels, xrange, yrange, outside}.
function P.scatter(path, x, opts)
  opts = opts or {}
  check_path("scatter", path)
  local pts = points("scatter", x, "x")
  local ref = opts.reference and points("scatter", opts.reference, "reference")
  local xr, yr
  if opts.range then
    local r = opts.range
    xr, yr = { r[1], r[2] }, { r[3], r[4] }
    if not (r[2] > r[1] and r[4] > r[3]) then fail("scatter", "range must be {xmin, xmax, ymin, ymax} with min < max") end
  end
  local size = opts.size or 560
  local W, H = size, size
  local cv = Canvas.new(W, H)
  local rect = { 64, 30, W - 16, H - 44 }
  if not xr then
    xr, yr = extent({ ref or pts })
    if opts.equal ~= false then -- one unit is as long on both axes
      local sx = (xr[2] - xr[1]) / (rect[3] - rect[1])
      local sy = (yr[2] - yr[1]) / (rect[4] - rect[2])
      if sx > sy then
        local c, h = (yr[1] + yr[2]) / 2, sx * (rect[4] - rect[2]) / 2
        yr = { c - h, c + h }
      else
        local c, h = (xr[1] + xr[2]) / 2, sy * (rect[3] - rect[1]) / 2
        xr = { c - h, c + h }
      end
    end
  end
  local outside = 0
  for _, p in ipairs(pts) do
    if not (p[1] >= xr[1] and p[1] <= xr[2] and p[2] >= yr[1] and p[2] <= yr[2]) then outside = outside + 1 end
  end
  local title = opts.title
  if outside > 0 then title = (title and title .. "  " or "") .. ("(%d of %d outside)"):format(outside, #pts) end
  local fx, fy = frame(cv, rect, xr, yr, { title = title, xlabel = opts.xlabel, ylabel = opts.ylabel })
  local r, a = opts.radius or 1.6, opts.alpha or 0.6
  local function draw(set, color)
    for _, p in ipairs(set) do
      if p[1] >= xr[1] and p[1] <= xr[2] and p[2] >= yr[1] and p[2] <= yr[2] then
        cv:disc(fx(p[1]), fy(p[2]), r, color, a)
      end
    end
  end
  if ref then draw(ref, opts.reference_color or P.colors.reference) end
  draw(pts, opts.color or P.colors.sample)
  cv:rect(rect[1], rect[2], rect[3], rect[4], P.colors.axis)
  -- legend
  local lx, ly = rect[3] - 110, rect[2] + 8
  if ref then
    cv:fill_rect(lx, ly, lx + 7, ly + 7, opts.reference_color or P.colors.reference)
    cv:text(lx + 12, ly, "DATA", P.colors.text)
    ly = ly + 14
  end
  cv:fill_rect(lx, ly, lx + 7, ly + 7, opts.color or P.colors.sample)
  cv:text(lx + 12, ly, "SAMPLES", P.colors.text)
  return cv:write(path), { rect = rect, xrange = xr, yrange = yr, outside = outside }
end

-- text into a packed pixel buffer (outc values per pixel) with the 3x5 font
-- at integer scale `sc`, top-left (x, y); returns nothing
local function put_text(px, W, H, outc, x, y, s, value, sc)
  for i = 1, #s do
    local ch = s:sub(i, i)
    for row = 0, Font.height - 1 do
      for col = 0, Font.width - 1 do
        if Font.on(ch, col, row) then
          for yy = y + row * sc, y + (row + 1) * sc - 1 do
            for xx = x + col * sc, x + (col + 1) * sc - 1 do
              if xx >= 0 and yy >= 0 and xx < W and yy < H then
                local o = (yy * W + xx) * outc
                for c = 1, outc do px[o + c] = value end
              end
            end
          end
        end
      end
    end
    x = x + (Font.width + 1) * sc
  end
end

-- grid(path, images, {nrow, pad = 2, range = {-1, 1} | "auto", scale, max = 64,
--   row_labels, title}):
-- images {N, H, W} (gray), {N, C, H, W} with C = 1 or 3, or one {H, W}
-- image; values in range map to 0..255 (clamped). nrow images per row
-- (default ceil(sqrt(N))); scale is the integer pixel size (default: cells of
-- at least 56 pixels). row_labels (one string per row) are written left of
-- the rows, title above them, dark on white margins (text scale 2: 8 pixels
-- a character, 10 high). Returns the path and the layout {width, height,
-- left, top, cell_w, cell_h, pad, nrow, rows}: cell (r, c), 0-based, starts
-- at x = left + pad + c (cell_w + pad), y = top + pad + r (cell_h + pad).
function P.grid(path, images, opts)
  opts = opts or {}
  check_path("grid", path)
  if not A.is_tensor(images) then fail("grid", "images must be a tensor, got %s", type(images)) end
  local s = images:shape()
  local N, C, Hh, Ww
  if #s == 2 then N, C, Hh, Ww = 1, 1, s[1], s[2]
  elseif #s == 3 then N, C, Hh, Ww = s[1], 1, s[2], s[3]
  elseif #s == 4 then N, C, Hh, Ww = s[1], s[2], s[3], s[4]
  else fail("grid", "images must be {N, H, W} or {N, C, H, W}, got {%s}", table.concat(s, ", ")) end
  if C ~= 1 and C ~= 3 then fail("grid", "images need 1 or 3 channels, got %d", C) end
  if N < 1 or Hh < 1 or Ww < 1 then fail("grid", "no pixels in images of shape {%s}", table.concat(s, ", ")) end
  local labels = opts.row_labels
  if labels ~= nil and type(labels) ~= "table" then fail("grid", "row_labels must be a list of strings, got %s", type(labels)) end
  N = math.min(N, opts.max or (labels and math.huge) or 64)
  local x = images:reshape({ s[1], C, Hh, Ww }):narrow(1, 1, N)
  local lo, hi
  if opts.range == "auto" then
    lo, hi = x:min():item(), x:max():item()
    if hi <= lo then hi = lo + 1 end
  else
    local r = opts.range or { -1, 1 }
    lo, hi = r[1], r[2]
    if not (hi > lo) then fail("grid", "range must be {lo, hi} with lo < hi") end
  end
  -- bytes on the device: round(255 (v - lo) / (hi - lo)) clamped to 0..255
  local bytes = A.no_grad(function()
    return ((x:to("f32") - lo) * (255 / (hi - lo)) + 0.5):clamp(0, 255.99):floor():tolist()
  end)
  for i, v in ipairs(bytes) do
    if v ~= v then bytes[i] = 0 end -- NaN (a diverged model) shows black
  end
  local nrow = opts.nrow or math.ceil(math.sqrt(N))
  local rows = math.ceil(N / nrow)
  local pad = opts.pad or 2
  local sc = opts.scale or math.max(1, math.ceil(56 / math.max(Hh, Ww)))
  local cw, ch = Ww * sc, Hh * sc
  local left, top = 0, 0
  if labels then
    if #labels < rows then fail("grid", "row_labels has %d entries for %d rows", #labels, rows) end
    local widest = 0
    for i = 1, rows do
      if type(labels[i]) ~= "string" then fail("grid", "row_labels[%d] is not a string", i) end
      widest = math.max(widest, Canvas.text_width(labels[i]))
    end
    left = widest + 16
  end
  if opts.title then top = 24 end
  local W = left + nrow * cw + (nrow + 1) * pad
  local H = top + rows * ch + (rows + 1) * pad
  local outc = C == 1 and 1 or 3
  local padv = opts.pad_value or 40
  local px = {}
  for i = 0, W * H - 1 do
    local v = (i % W < left or i // W < top) and 255 or padv
    for c = 1, outc do px[i * outc + c] = v end
  end
  local ink = 20
  if labels then
    for r = 0, rows - 1 do
      put_text(px, W, H, outc, 8, top + pad + r * (ch + pad) + (ch - 10) // 2, labels[r + 1], ink, 2)
    end
  end
  if opts.title then put_text(px, W, H, outc, left + pad, 7, tostring(opts.title), ink, 2) end
  for n = 0, N - 1 do
    local gx, gy = n % nrow, n // nrow
    local ox, oy = left + pad + gx * (cw + pad), top + pad + gy * (ch + pad)
    for yy = 0, ch - 1 do
      local sy = yy // sc
      for xx = 0, cw - 1 do
        local sx = xx // sc
        local o = ((oy + yy) * W + ox + xx) * outc
        for c = 0, outc - 1 do
          px[o + c + 1] = bytes[((n * C + c) * Hh + sy) * Ww + sx + 1]
        end
      end
    end
  end
  local parts, chunk = {}, 12288
  for i = 1, #px, chunk do parts[#parts + 1] = string.char(table.unpack(px, i, math.min(i + chunk - 1, #px))) end
  core.write_png(path, W, H, outc, table.concat(parts))
  return path, { width = W, height = H, left = left, top = top, cell_w = cw, cell_h = ch, pad = pad, nrow = nrow,
    rows = rows }
end

-- curve(path, ys, {xs, title, xlabel, ylabel, log = false, smooth, width = 640,
--   height = 400}): ys is a tensor {N}, a list of numbers, or a list of
-- {x, y} pairs (as a training log keeps them). smooth = a in (0, 1) also
-- draws the exponential moving average y_k = a y_{k-1} + (1 - a) v_k.
-- Returns the path and the layout {rect, xrange, yrange}.
function P.curve(path, ys, opts)
  opts = opts or {}
  check_path("curve", path)
  local W, H = opts.width or 640, opts.height or 400
  local cv = Canvas.new(W, H)
  local layout = P.draw_curve("curve", cv, 0, W, H, ys, opts)
  return cv:write(path), layout
end

-- curves(path, {{ys, opts}, ...}, {width = 640, height = 400}): curve panels
-- side by side (each width x height pixels), e.g. a total loss beside its
-- parts. Returns the path and the panels' layouts.
function P.curves(path, panels, opts)
  opts = opts or {}
  check_path("curves", path)
  if type(panels) ~= "table" or #panels == 0 then fail("curves", "panels must be a non-empty list of {ys, opts}") end
  local W, H = opts.width or 640, opts.height or 400
  local cv = Canvas.new(W * #panels, H)
  local layouts = {}
  for i, p in ipairs(panels) do
    if type(p) ~= "table" then fail("curves", "panel %d must be {ys, opts}, got %s", i, type(p)) end
    layouts[i] = P.draw_curve("curves", cv, (i - 1) * W, W, H, p[1], p[2] or {})
  end
  return cv:write(path), layouts
end

-- one curve panel on canvas cv at x offset ox, W x H pixels
function P.draw_curve(fn, cv, ox, W, H, ys, opts)
  local xs, vals = {}, {}
  if A.is_tensor(ys) then
    vals = ys:to("f32"):reshape({ -1 }):tolist()
  elseif type(ys) == "table" then
    for i, v in ipairs(ys) do
      if type(v) == "table" then xs[i], vals[i] = v[1], v[2] else vals[i] = v end
    end
  else
    fail(fn, "ys must be a tensor or a list, got %s", type(ys))
  end
  if opts.xs then xs = A.is_tensor(opts.xs) and opts.xs:to("f32"):tolist() or opts.xs end
  for i = 1, #vals do
    if xs[i] == nil then xs[i] = i end
    if type(vals[i]) ~= "number" or type(xs[i]) ~= "number" then fail(fn, "point %d is not a pair of numbers", i) end
  end
  if #vals == 0 then fail(fn, "no points to draw") end
  local log = opts.log
  local function ty(v) return log and (v > 0 and math.log(v, 10) or nil) or v end
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(vals) do
    local t = ty(v)
    if t and t == t and t > -math.huge and t < math.huge then lo, hi = math.min(lo, t), math.max(hi, t) end
  end
  if lo > hi then lo, hi = 0, 1 end
  if hi - lo < 1e-12 then lo, hi = lo - 0.5, hi + 0.5 end
  local padv = 0.05 * (hi - lo)
  local yr = { lo - padv, hi + padv }
  local xr = { xs[1], xs[#xs] }
  for _, v in ipairs(xs) do xr[1], xr[2] = math.min(xr[1], v), math.max(xr[2], v) end
  if xr[2] <= xr[1] then xr = { xr[1] - 0.5, xr[1] + 0.5 } end
  local rect = { ox + 72, 30, ox + W - 20, H - 48 }
  local fx, fy = frame(cv, rect, xr, yr, {
    title = opts.title, xlabel = opts.xlabel, ylabel = opts.ylabel,
    ylabel_fn = log and function(v) return ("%.3g"):format(10 ^ v) end or nil,
  })
  local function polyline(values, color, w)
    local px, py
    for i, v in ipairs(values) do
      local t = ty(v)
      if t and t == t and t > -math.huge and t < math.huge then
        local nx, ny = fx(xs[i]), fy(t)
        if px then cv:line(px, py, nx, ny, color, w) else cv:disc(nx, ny, w + 1.5, color) end
        px, py = nx, ny
      else
        px = nil
      end
    end
  end
  if opts.smooth then
    local a, sm, m = opts.smooth, {}, nil
    for i, v in ipairs(vals) do
      m = m and a * m + (1 - a) * v or v
      sm[i] = m
    end
    polyline(vals, P.colors.raw, 1)
    polyline(sm, P.colors.curve, 2)
  else
    polyline(vals, P.colors.curve, 2)
  end
  return { rect = rect, xrange = xr, yrange = yr }
end

return P
