-- mf.io.load_npy, load_npz and save_npy: numpy's .npy and .npz arrays.
local core = require "moonflow.core"
local U = require "moonflow.io.util"

local IO = {}
local Py = require "moonflow.io.pyliteral"
local is_tensor = require("moonflow.autograd").is_tensor

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
-- the dtype each element type loads as when opts.dtype is not given: floats
-- keep their width (f16 widens to f32), integers and bools load as i32
local NATURAL = { f16 = "f32", f32 = "f32", f64 = "f64" }
local DTYPES = { f32 = true, f64 = true, i32 = true }

-- A byte source over a plain file: read(n), and size (its length).
local function file_source(f)
  local size = f:seek("end")
  f:seek("set", 0)
  return { size = size, read = function(_, n) return f:read(n) or "" end }
end

-- load_npy(path[, {dtype = ...}]) -> tensor: float16/32/64, int8/16/32/64,
-- uint8/16 and bool arrays, little- or big-endian, C or Fortran order (a
-- Fortran array comes back with its shape, its elements in C order). f64
-- stays f64, f32 and f16 load as f32, integers and bools as i32 (an int64
-- element outside 32 bits is an error naming it); opts.dtype ("f32", "f64",
-- "i32") converts. The header is read as the Python dict literal it is
-- (moonflow.io.pyliteral): a duplicate key's last value counts, as in
-- numpy; keys other than descr, fortran_order and shape are rejected, as
-- numpy's reader rejects them. A .npz archive is refused with a pointer to
-- load_npz.
function IO.load_npy(path, opts)
  local fn = "moonflow.io.load_npy"
  if type(path) ~= "string" then error(("%s: path must be a string, got %s"):format(fn, type(path)), 2) end
  if opts ~= nil and type(opts) ~= "table" then error(("%s: opts must be a table, got %s"):format(fn, type(opts)), 2) end
  if opts and opts.dtype ~= nil and not DTYPES[opts.dtype] then
    error(("%s: dtype must be \"f32\", \"f64\" or \"i32\", got %s"):format(fn, tostring(opts.dtype)), 2)
  end
  local f, err = io.open(path, "rb")
  if not f then error(("%s: cannot open %s"):format(fn, err), 2) end
  local src = file_source(f)
  local ok0, t0 = pcall(function()
    if src:read(4) == "PK\3\4" then
      error(("%s: %s is a zip archive (.npz): read it with moonflow.io.load_npz"):format(fn, path), 0)
    end
    f:seek("set", 0)
    return read_npy(src, path, opts, fn)
  end)
  f:close()
  if not ok0 then error(t0, 0) end
  return t0
end

-- load_npz(path[, {dtype = ...}]) -> {name = tensor}: every array of a
-- numpy .npz archive (np.savez, np.savez_compressed: stored or deflated
-- members), named as np.load names them (the member name without ".npy").
-- Each member is read in a stream: its npy header first, then exactly the
-- bytes that header announces, so memory stays bounded by the header's
-- size (a member that inflates to more or less is an error).
function IO.load_npz(path, opts)
  local fn = "moonflow.io.load_npz"
  if type(path) ~= "string" then error(("%s: path must be a string, got %s"):format(fn, type(path)), 2) end
  if opts ~= nil and type(opts) ~= "table" then error(("%s: opts must be a table, got %s"):format(fn, type(opts)), 2) end
  if opts and opts.dtype ~= nil and not DTYPES[opts.dtype] then
    error(("%s: dtype must be \"f32\", \"f64\" or \"i32\", got %s"):format(fn, tostring(opts.dtype)), 2)
  end
  local ok, z = pcall(core.open_zip, path)
  if not ok then error(fn .. ": " .. tostring(z):gsub("^moonflow%.[%w_]+: ", ""), 0) end
  local out = {}
  local ok2, err = pcall(function()
    for _, e in ipairs(z:entries()) do
      local name = e.name:gsub("%.npy$", "")
      if e.name:sub(-1) ~= "/" then
        if out[name] ~= nil then error(("%s: %s: two members are named %q"):format(fn, path, name), 0) end
        local m = z:open(e.index)
        local src = { size = e.size, read = function(_, n) return m:read(n) end }
        local okm, t = pcall(read_npy, src, path .. ":" .. e.name, opts, fn)
        m:close()
        if not okm then error(t, 0) end
        out[name] = t
      end
    end
  end)
  z:close()
  if not ok2 then error(tostring(err):gsub("^moonflow%.zip[%w_.]*: ", fn .. ": "), 0) end
  return out
end

-- the header first, then only the data bytes it announces: a source whose
-- size disagrees with its header is refused before its data is read
function read_npy(src, path, opts, fn)
  local function bad(fmt, ...) error((fn .. ": %s: " .. fmt):format(path, ...), 0) end
  local file_len = src.size
  local s = src:read(10)
  if #s < 10 or s:sub(1, 6) ~= "\x93NUMPY" then bad("not an npy file (bad magic)") end
  local major = s:byte(7)
  local hlen, start
  if major == 1 then
    hlen, start = string.unpack("<I2", s, 9), 11
  elseif major == 2 or major == 3 then
    s = s .. src:read(2)
    if #s < 12 then bad("truncated header") end
    hlen, start = string.unpack("<I4", s, 9), 13
  else
    bad("unsupported npy version %d.%d", major, s:byte(8))
  end
  if start + hlen - 1 > file_len then bad("header of %d bytes runs beyond the end of the file", hlen) end
  local h = src:read(hlen)
  if #h < hlen then bad("truncated header") end
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
  if getmetatable(shp) ~= Py.tuple_mt then bad("shape must be a tuple of ints, got %s", repr(shp)) end
  local order, code = descr:match("^([<>|=])(%a%d+)$")
  if not code then bad("unsupported dtype %s", repr(descr)) end
  local kind = NPY[code]
  if not kind then bad("unsupported dtype %s", descr) end
  if order == "|" and code:sub(-1) ~= "1" then bad("dtype %s has no byte order ('|' is for single bytes)", descr) end
  -- '=' is the writer's native order; numpy.save always writes '<' or '>'
  local big = order == ">"
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
  local data = src:read(numel * size)
  if #data ~= numel * size then
    bad("%d data bytes where the header announces %d (truncated, or changed while read)", #data, numel * size)
  end
  if #src:read(1) > 0 then bad("the content runs past the %d data bytes its header announces", numel * size) end
  local dtype = opts and opts.dtype or NATURAL[kind] or "i32"
  -- Fortran order: the elements are the C-order elements of the reversed
  -- shape; decoded so, then the dims reversed and made contiguous
  local dshape = shape
  if fortran and #shape > 1 then
    dshape = {}
    for i = 1, #shape do dshape[i] = shape[#shape + 1 - i] end
  end
  local ok2, t = pcall(core.decode, data, 0, dshape, kind, big, dtype)
  if not ok2 then bad("%s%s", tostring(t):gsub("^moonflow%.decode: ", ""), fortran and " (in file order)" or "") end
  if dshape ~= shape then
    local perm = {}
    for i = 1, #shape do perm[i] = #shape + 1 - i end
    t = core.contiguous(core.permute(t, perm))
  end
  return t
end

-- npy descr of each dtype
local DESCR = { f32 = "<f4", f64 = "<f8", i32 = "<i4" }

-- save_npy(path, tensor) -> path: an npy v1.0 file as numpy.save writes it
-- (C order, little-endian '<f4', '<f8' or '<i4', the header padded with
-- spaces and ended by a newline so the data starts at a multiple of 64).
function IO.save_npy(path, t)
  local fn = "moonflow.io.save_npy"
  if type(path) ~= "string" then error(("%s: path must be a string, got %s"):format(fn, type(path)), 2) end
  if not is_tensor(t) then error(("%s: expected a tensor, got %s"):format(fn, type(t)), 2) end
  local shape = core.shape(t)
  local dims = {}
  for i, d in ipairs(shape) do dims[i] = tostring(d) end
  local sh = #dims == 1 and "(" .. dims[1] .. ",)" or "(" .. table.concat(dims, ", ") .. ")"
  local dict = ("{'descr': '%s', 'fortran_order': False, 'shape': %s, }"):format(DESCR[core.dtype(t)], sh)
  local total = (10 + #dict + 1 + 63) // 64 * 64
  if total - 10 > 0xFFFF then error(("%s: %s: shape %s needs a header beyond npy 1.0"):format(fn, path, shape_str(shape)), 2) end
  dict = dict .. (" "):rep(total - 10 - #dict - 1) .. "\n"
  core.write_file(path, { "\x93NUMPY\1\0", string.pack("<I2", #dict), dict, core.tobytes(t) })
  return path
end

return IO
