-- mf.io.load_npy: numpy's .npy arrays.
local core = require "moonflow.core"
local U = require "moonflow.io.util"

local IO = {}
local Py = require "moonflow.io.pyliteral"

local HEADER_KEYS = { descr = true, fortran_order = true, shape = true }

-- a header value as Python would print it, for messages
local function repr(v)
  if type(v) == "string" then return ("'%s'"):format(v) end
  if v == true then return "True" elseif v == false then return "False" end
  if type(v) == "table" and v ~= Py.None then
    local mt = getmetatable(v)
    if mt == Py.tuple_mt or mt == Py.list_mt then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = repr(x) end
      local open, close = mt == Py.tuple_mt and "(" or "[", mt == Py.tuple_mt and ")" or "]"
      return open .. table.concat(parts, ", ") .. (#v == 1 and mt == Py.tuple_mt and "," or "") .. close
    end
    return "a dict"
  end
  return tostring(v)
end
local shape_str, MAX_NUMEL = U.shape_str, U.MAX_NUMEL
local read_npy

local NPY = { f2 = "f16", f4 = "f32", f8 = "f64", i1 = "i8", i2 = "i16", i4 = "i32", i8 = "i64",
  u1 = "u8", u2 = "u16", b1 = "bool" }

-- load_npy(path[, {dtype = "f32"}]) -> tensor: float16/32/64, int8/16/32/64,
-- uint8/16 and bool arrays, little-endian, C order; values converted to
-- opts.dtype ("f32" by default; "i32" keeps integer arrays exact). The
-- header is read as the Python dict literal it is (moonflow.io.pyliteral):
-- a duplicate key's last value counts, as in numpy; keys other than descr,
-- fortran_order and shape are rejected, as numpy's reader rejects them.
function IO.load_npy(path, opts)
  local fn = "moonflow.io.load_npy"
  if type(path) ~= "string" then error(("%s: path must be a string, got %s"):format(fn, type(path)), 2) end
  local f, err = io.open(path, "rb")
  if not f then error(("%s: cannot open %s"):format(fn, err), 2) end
  local ok0, t0 = pcall(read_npy, f, path, opts, fn)
  f:close()
  if not ok0 then error(t0, 0) end
  return t0
end

-- the header first, then only the data bytes it announces: a file whose
-- size disagrees with its header is refused before its data is read
function read_npy(f, path, opts, fn)
  local function bad(fmt, ...) error((fn .. ": %s: " .. fmt):format(path, ...), 0) end
  local file_len = f:seek("end")
  f:seek("set", 0)
  local s = f:read(10) or ""
  if #s < 10 or s:sub(1, 6) ~= "\x93NUMPY" then bad("not an npy file (bad magic)") end
  local major = s:byte(7)
  local hlen, start
  if major == 1 then
    hlen, start = string.unpack("<I2", s, 9), 11
  elseif major == 2 or major == 3 then
    s = s .. (f:read(2) or "")
    if #s < 12 then bad("truncated header") end
    hlen, start = string.unpack("<I4", s, 9), 13
  else
    bad("unsupported npy version %d.%d", major, s:byte(8))
  end
  if start + hlen - 1 > file_len then bad("header of %d bytes runs beyond the end of the file", hlen) end
  local h = f:read(hlen) or ""
  local ok, d = pcall(Py.decode, h)
  if not ok then bad("header is not a dict literal: %s", d) end
  if getmetatable(d) ~= Py.dict_mt then bad("header is not a dict literal") end
  -- exactly numpy's keys, as numpy's own reader demands
  for k in pairs(d) do
    if not HEADER_KEYS[k] then bad("unexpected key %s in the header", repr(k)) end
  end
  for k in pairs(HEADER_KEYS) do
    if d[k] == nil then bad("header lacks '%s'", k) end
  end
  local descr, fortran, shp = d.descr, d.fortran_order, d.shape
  if getmetatable(descr) == Py.list_mt then bad("structured dtypes are not supported (descr is a list of fields)") end
  if type(descr) ~= "string" then bad("descr must be a dtype string, got %s", repr(descr)) end
  if type(fortran) ~= "boolean" then bad("fortran_order must be True or False, got %s", repr(fortran)) end
  if fortran then bad("Fortran-order arrays are not supported (save with C order)") end
  if getmetatable(shp) ~= Py.tuple_mt then bad("shape must be a tuple of ints, got %s", repr(shp)) end
  local order, code = descr:match("^([<>|=])(%a%d+)$")
  if not code then bad("unsupported dtype %s", repr(descr)) end
  local kind = NPY[code]
  if not kind then bad("unsupported dtype %s", descr) end
  if order == ">" and code:sub(-1) ~= "1" then bad("big-endian dtype %s is not supported", descr) end
  if order == "|" and code:sub(-1) ~= "1" then bad("dtype %s has no byte order ('|' is for single bytes)", descr) end
  local shape = {}
  for i, v in ipairs(shp) do
    if math.type(v) ~= "integer" or v < 0 then bad("shape entry %d is %s, not an int >= 0", i, repr(v)) end
    shape[i] = v
  end
  if #shape > 8 then bad("%d dims, at most 8 are supported", #shape) end
  local numel = 1
  for _, d in ipairs(shape) do
    numel = numel * d
    if d > MAX_NUMEL or numel > MAX_NUMEL then bad("shape %s has too many elements", shape_str(shape)) end
  end
  local size = tonumber(code:sub(2))
  local have = file_len - (start + hlen - 1)
  if have ~= numel * size then
    bad("%d data bytes for shape %s of %s, expected %d", have, shape_str(shape), descr, numel * size)
  end
  local data = f:read(numel * size) or ""
  if #data ~= numel * size then bad("the file changed while it was read") end
  local dtype = opts and opts.dtype or "f32"
  local ok2, t = pcall(core.decode, data, 0, shape, kind, false, dtype)
  if not ok2 then bad("%s", t) end
  return t
end

return IO
