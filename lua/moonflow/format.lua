-- Printing tensors the way numpy does: aligned columns, nested brackets,
-- "..." past 1000 elements (three entries kept at each end of a dim), and
-- rows wrapped at the terminal's width (COLUMNS, else the terminal on
-- stdout, else 80 columns).
local core = require "moonflow.core"

local F = {}
local EDGE, LIMIT = 3, 1000

-- index lists per dim: all of them, or the first and last EDGE with a gap (0)
local function picks(shape, summarize)
  local p = {}
  for d, n in ipairs(shape) do
    local l = {}
    if summarize and n > 2 * EDGE then
      for i = 1, EDGE do l[#l + 1] = i end
      l[#l + 1] = 0
      for i = n - EDGE + 1, n do l[#l + 1] = i end
    else
      for i = 1, n do l[i] = i end
    end
    p[d] = l
  end
  return p
end

local function number_format(vals, dtype)
  if dtype == "i32" then return function(v) return ("%d"):format(v) end end
  local maxa, mina, allint = 0, math.huge, true
  for _, v in ipairs(vals) do
    local a = math.abs(v)
    if a == a and a ~= math.huge then
      if a > maxa then maxa = a end
      if a > 0 and a < mina then mina = a end
      if v ~= math.floor(v) then allint = false end
    end
  end
  local sci = maxa >= 1e8 or (mina < 1e-4 and mina > 0)
  return function(v)
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
    if sci then return ("%.4e"):format(v) end
    if allint then return ("%.0f."):format(v) end
    return ("%.4f"):format(v)
  end
end

function F.width()
  local w = math.tointeger(tonumber(os.getenv("COLUMNS") or ""))
  if w and w > 0 then return w end
  return core.terminal_width and core.terminal_width() or 80
end

-- a row's entries "[a, b, ...]" starting at column col, wrapped before width
local function wrap_row(parts, col, width, indent)
  local lines, line, used = {}, "[", col + 1
  for k, p in ipairs(parts) do
    local piece = p .. (k < #parts and "," or "]")
    if k > 1 and used + 1 + #piece > width then
      lines[#lines + 1] = line
      line, used = indent .. " " .. piece, #indent + 1 + #piece
    else
      line = line .. (k > 1 and " " or "") .. piece
      used = used + (k > 1 and 1 or 0) + #piece
    end
  end
  if #parts == 0 then line = "[]" end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

function F.tensor(t)
  local shape, dtype = core.shape(t), core.dtype(t)
  local n = core.numel(t)
  local suffix = (", shape={%s}, dtype=%s)"):format(table.concat(shape, ", "), dtype)
  local flat = core.flat(t)
  if #shape == 0 then
    return "tensor(" .. number_format(flat, dtype)(flat[1]) .. suffix
  end
  local sel = picks(shape, n > LIMIT)
  local strides, s = {}, 1
  for d = #shape, 1, -1 do strides[d] = s; s = s * shape[d] end
  -- collect the shown values to size the columns
  local shown = {}
  local function collect(d, off)
    if d > #shape then shown[#shown + 1] = flat[off + 1]; return end
    for _, i in ipairs(sel[d]) do if i > 0 then collect(d + 1, off + (i - 1) * strides[d]) end end
  end
  collect(1, 0)
  local fmt = number_format(shown, dtype)
  local width = 0
  for _, v in ipairs(shown) do width = math.max(width, #fmt(v)) end
  local linewidth = F.width()
  local function render(d, off, indent)
    local parts = {}
    for _, i in ipairs(sel[d]) do
      if i == 0 then parts[#parts + 1] = "..."
      elseif d == #shape then
        local str = fmt(flat[off + (i - 1) * strides[d] + 1])
        parts[#parts + 1] = (" "):rep(width - #str) .. str
      else
        parts[#parts + 1] = render(d + 1, off + (i - 1) * strides[d], indent .. " ")
      end
    end
    if d == #shape then return wrap_row(parts, #indent, linewidth, indent) end
    local sep = ",\n" .. ("\n"):rep(#shape - d - 1) .. indent .. " "
    return "[" .. table.concat(parts, sep) .. "]"
  end
  return "tensor(" .. render(1, 0, "       ") .. suffix
end

return F
