-- mf.io.load_npy: numpy's .npy arrays.
local core = require "moonflow.core"
local U = require "moonflow.io.util"

local IO = {}
local shape_str, MAX_NUMEL, read_all = U.shape_str, U.MAX_NUMEL, U.read_all

local NPY = { f2 = "f16", f4 = "f32", f8 = "f64", i1 = "i8", i2 = "i16", i4 = "i32", i8 = "i64",
  u1 = "u8", u2 = "u16", b1 = "bool" }

-- load_npy(path[, {dtype = "f32"}]) -> tensor: float16/32/64, int8/16/32/64,
-- uint8/16 and bool arrays, little-endian, C order; values converted to
-- opts.dtype ("f32" by default; "i32" keeps integer arrays exact).
function IO.load_npy(path, opts)
  local fn = "moonflow.io.load_npy"
  local s = read_all("load_npy", path)
  local function bad(fmt, ...) error((fn .. ": %s: " .. fmt):format(path, ...), 0) end
  if #s < 10 or s:sub(1, 6) ~= "\x93NUMPY" then bad("not an npy file (bad magic)") end
  local major = s:byte(7)
  local hlen, start
  if major == 1 then
    hlen, start = string.unpack("<I2", s, 9), 11
  elseif major == 2 or major == 3 then
    if #s < 12 then bad("truncated header") end
    hlen, start = string.unpack("<I4", s, 9), 13
  else
    bad("unsupported npy version %d.%d", major, s:byte(8))
  end
  if start + hlen - 1 > #s then bad("header of %d bytes runs beyond the end of the file", hlen) end
  local h = s:sub(start, start + hlen - 1)
  local descr = h:match("['\"]descr['\"]%s*:%s*['\"]([^'\"]*)['\"]")
  local fortran = h:match("['\"]fortran_order['\"]%s*:%s*(%a+)")
  local shp = h:match("['\"]shape['\"]%s*:%s*(%b())")
  if not descr or not fortran or not shp then bad("header lacks descr, fortran_order or shape: %s", h) end
  if fortran ~= "False" then bad("Fortran-order arrays are not supported (save with C order)") end
  local order, code = descr:match("^([<>|=])(%a%d+)$")
  if not code then bad("unsupported dtype %s (structured or unknown)", descr) end
  if order == ">" and code:sub(-1) ~= "1" then bad("big-endian dtype %s is not supported", descr) end
  local kind = NPY[code]
  if not kind then bad("unsupported dtype %s", descr) end
  local shape = {}
  for d in shp:gmatch("[^%s,()]+") do
    local v = math.tointeger(tonumber(d))
    if not v or v < 0 then bad("bad shape %s", shp) end
    shape[#shape + 1] = v
  end
  if #shape > 8 then bad("%d dims, at most 8 are supported", #shape) end
  local numel = 1
  for _, d in ipairs(shape) do
    numel = numel * d
    if d > MAX_NUMEL or numel > MAX_NUMEL then bad("shape %s has too many elements", shape_str(shape)) end
  end
  local size = tonumber(code:sub(2))
  local data = start + hlen - 1
  if #s - data ~= numel * size then
    bad("%d data bytes for shape %s of %s, expected %d", #s - data, shape_str(shape), descr, numel * size)
  end
  local dtype = opts and opts.dtype or "f32"
  local ok, t = pcall(core.decode, s, data, shape, kind, false, dtype)
  if not ok then bad("%s", t) end
  return t
end

return IO
