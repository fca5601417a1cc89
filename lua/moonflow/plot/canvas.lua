-- An RGB raster on the host: points, lines, rectangles and 3x5 text,
-- written as PNG through core.write_png (libpng). Coordinates are pixels,
-- (0, 0) top left; everything outside the canvas is clipped.
local core = require "moonflow.core"
local F = require "moonflow.plot.font"

local C = {}
C.__index = C

function C.new(w, h, bg)
  bg = bg or { 255, 255, 255 }
  local px = {}
  local r, g, b = bg[1], bg[2], bg[3]
  for i = 0, w * h - 1 do
    px[3 * i + 1], px[3 * i + 2], px[3 * i + 3] = r, g, b
  end
  return setmetatable({ w = w, h = h, px = px }, C)
end

-- pixel (x, y) := alpha color + (1 - alpha) pixel
function C:blend(x, y, color, alpha)
  x, y = math.floor(x), math.floor(y)
  if x < 0 or y < 0 or x >= self.w or y >= self.h then return end
  local i = 3 * (y * self.w + x)
  local px = self.px
  if alpha == nil or alpha >= 1 then
    px[i + 1], px[i + 2], px[i + 3] = color[1], color[2], color[3]
  else
    for c = 1, 3 do px[i + c] = math.floor(alpha * color[c] + (1 - alpha) * px[i + c] + 0.5) end
  end
end

function C:get(x, y)
  local i = 3 * (y * self.w + x)
  return self.px[i + 1], self.px[i + 2], self.px[i + 3]
end

-- filled disc of radius r (pixels) centred at (cx, cy)
function C:disc(cx, cy, r, color, alpha)
  local x0, x1 = math.floor(cx - r), math.ceil(cx + r)
  local y0, y1 = math.floor(cy - r), math.ceil(cy + r)
  local r2 = r * r
  for y = y0, y1 do
    for x = x0, x1 do
      local dx, dy = x + 0.5 - cx, y + 0.5 - cy
      if dx * dx + dy * dy <= r2 then self:blend(x, y, color, alpha) end
    end
  end
end

function C:fill_rect(x0, y0, x1, y1, color)
  for y = math.max(0, math.floor(y0)), math.min(self.h - 1, math.floor(y1)) do
    for x = math.max(0, math.floor(x0)), math.min(self.w - 1, math.floor(x1)) do self:blend(x, y, color) end
  end
end

function C:rect(x0, y0, x1, y1, color)
  self:line(x0, y0, x1, y0, color)
  self:line(x1, y0, x1, y1, color)
  self:line(x1, y1, x0, y1, color)
  self:line(x0, y1, x0, y0, color)
end

-- a line from (x0, y0) to (x1, y1), width w pixels (square pen)
function C:line(x0, y0, x1, y1, color, w)
  w = w or 1
  local n = math.max(math.abs(x1 - x0), math.abs(y1 - y0), 1)
  n = math.ceil(n)
  local h0 = -math.floor((w - 1) / 2)
  for s = 0, n do
    local x = math.floor(x0 + (x1 - x0) * s / n + 0.5)
    local y = math.floor(y0 + (y1 - y0) * s / n + 0.5)
    for dy = h0, h0 + w - 1 do
      for dx = h0, h0 + w - 1 do self:blend(x + dx, y + dy, color) end
    end
  end
end

-- text with its top-left corner at (x, y); scale multiplies the 3x5 glyphs.
-- Returns the width drawn.
function C:text(x, y, s, color, scale)
  scale = scale or 2
  local adv = (F.width + 1) * scale
  for i = 1, #s do
    local ch = s:sub(i, i)
    for row = 0, F.height - 1 do
      for col = 0, F.width - 1 do
        if F.on(ch, col, row) then
          self:fill_rect(x + col * scale, y + row * scale, x + (col + 1) * scale - 1, y + (row + 1) * scale - 1, color)
        end
      end
    end
    x = x + adv
  end
  return #s * adv - scale
end

function C.text_width(s, scale)
  scale = scale or 2
  return #s * (F.width + 1) * scale - scale
end

-- the pixels as packed RGB rows
function C:bytes()
  local parts, px, chunk = {}, self.px, 3 * 4096
  for i = 1, #px, chunk do
    parts[#parts + 1] = string.char(table.unpack(px, i, math.min(i + chunk - 1, #px)))
  end
  return table.concat(parts)
end

function C:write(path)
  core.write_png(path, self.w, self.h, 3, self:bytes())
  return path
end

return C
