-- mf.io safetensors: save_safetensors, load_safetensors and the validated
-- table of contents (parse_safetensors) they share.
local core = require "moonflow.core"
local J = require "moonflow.json"
local U = require "moonflow.io.util"

local IO = {}
local is_tensor = require("moonflow.autograd").is_tensor
local shape_str, MAX_NUMEL = U.shape_str, U.MAX_NUMEL

-- safetensors dtype -> element type for core.decode and the tensor dtype it loads as
local ST = {
  F64 = { "f64", "f64", 8 }, F32 = { "f32", "f32", 4 }, I32 = { "i32", "i32", 4 },
  F16 = { "f16", "f32", 2 }, BF16 = { "bf16", "f32", 2 }, I64 = { "i64", "i32", 8 },
  I16 = { "i16", "i32", 2 }, U16 = { "u16", "i32", 2 }, I8 = { "i8", "i32", 1 },
  U8 = { "u8", "i32", 1 }, BOOL = { "bool", "i32", 1 },
}
local TO_ST = { f32 = "F32", f64 = "F64", i32 = "I32" }
local MAX_HEADER = 100 * 1024 * 1024 -- the reference implementation's limit

local function check_name(fn, name)
  if type(name) ~= "string" or name == "" then
    error(("moonflow.io.%s: tensor names must be non-empty strings, got %s"):format(fn, tostring(name)), 3)
  end
  if name == "__metadata__" then
    error(("moonflow.io.%s: \"__metadata__\" is reserved and cannot name a tensor"):format(fn), 3)
  end
end

-- save_safetensors(path, {name = tensor}, metadata): metadata is a map of
-- strings (numbers and booleans are written with tostring).
function IO.save_safetensors(path, tensors, metadata)
  if type(path) ~= "string" then error("moonflow.io.save_safetensors: path must be a string", 2) end
  if type(tensors) ~= "table" then
    error(("moonflow.io.save_safetensors: expected a table of tensors, got %s"):format(type(tensors)), 2)
  end
  local items = {}
  for name, t in pairs(tensors) do
    check_name("save_safetensors", name)
    if not is_tensor(t) then
      error(("moonflow.io.save_safetensors: %q is a %s, not a tensor"):format(name, type(t)), 2)
    end
    items[#items + 1] = { name = name, t = t, size = core.dtype(t) == "f64" and 8 or 4 }
  end
  -- widest elements first, so every tensor starts aligned to its element size
  table.sort(items, function(a, b)
    if a.size ~= b.size then return a.size > b.size end
    return a.name < b.name
  end)
  local header, chunks, off = {}, {}, 0
  if metadata ~= nil then
    if type(metadata) ~= "table" then
      error(("moonflow.io.save_safetensors: metadata must be a table of strings, got %s"):format(type(metadata)), 2)
    end
    local m = {}
    for k, v in pairs(metadata) do
      local tv = type(v)
      if type(k) ~= "string" or (tv ~= "string" and tv ~= "number" and tv ~= "boolean") then
        error(("moonflow.io.save_safetensors: metadata entry %s = %s is not string -> string"):format(
          tostring(k), tostring(v)), 2)
      end
      m[k] = tv == "string" and v or tostring(v)
    end
    header.__metadata__ = m
  end
  for i, it in ipairs(items) do
    local bytes = core.tobytes(it.t)
    chunks[i] = bytes
    header[it.name] = { dtype = TO_ST[core.dtype(it.t)], shape = J.array(core.shape(it.t)),
      data_offsets = J.array { off, off + #bytes } }
    off = off + #bytes
  end
  local ok, h = pcall(J.encode, header)
  if not ok then error(("moonflow.io.save_safetensors: %s: %s"):format(path, h), 2) end
  h = h .. (" "):rep((8 - #h % 8) % 8) -- the data starts 8-byte aligned
  table.insert(chunks, 1, h)
  table.insert(chunks, 1, string.pack("<I8", #h))
  core.write_file(path, chunks)
  return path
end


local function failer(path)
  return function(fmt, ...)
    error(("moonflow.io.load_safetensors: %s: " .. fmt):format(path, ...), 0)
  end
end

-- the header length from the first 8 bytes of a file of file_len bytes
local function header_length(prefix, file_len, bad)
  if #prefix < 8 then bad("%d bytes, too short for the 8-byte header length", file_len) end
  local n = string.unpack("<I8", prefix) -- above 2^63 it reads negative
  if n < 2 or n > MAX_HEADER then bad("bad header length %d (file of %d bytes)", n, file_len) end
  if 8 + n > file_len then bad("header of %d bytes runs beyond the end of the file (%d bytes)", n, file_len) end
  return n
end

-- The validated table of contents of header text h followed by data_len
-- data bytes: a list of {name, dtype, shape, begin, stop} in file order and
-- the metadata.
local function parse_header(h, data_len, bad)
  if h:sub(1, 1) ~= "{" then bad("header is not a JSON object: it must start with '{', it starts with %q", h:sub(1, 1)) end
  local ok, header = pcall(J.decode, h)
  if not ok then bad("header is not valid JSON: %s", header) end
  if type(header) ~= "table" or getmetatable(header) == J.array_mt then bad("header is not a JSON object") end
  local metadata = {}
  local list = {}
  for name, e in pairs(header) do
    if name == "__metadata__" then
      if type(e) ~= "table" or getmetatable(e) == J.array_mt then bad("__metadata__ is not an object") end
      for k, v in pairs(e) do
        if type(v) ~= "string" then bad("__metadata__ entry %q is not a string", k) end
        metadata[k] = v
      end
    else
      local function tbad(fmt, ...) bad("tensor %q: " .. fmt, name, ...) end
      if type(e) ~= "table" then tbad("entry is not an object") end
      local info = ST[e.dtype]
      if type(e.dtype) ~= "string" then tbad("dtype missing") end
      if not info then tbad("unknown dtype %s", e.dtype) end
      if type(e.shape) ~= "table" or getmetatable(e.shape) ~= J.array_mt then tbad("shape is not an array") end
      local numel = 1
      for i, d in ipairs(e.shape) do
        if math.type(d) ~= "integer" or d < 0 then tbad("size %d of the shape is %s", i, tostring(d)) end
        numel = numel * d
        if d > MAX_NUMEL or numel > MAX_NUMEL then tbad("shape %s has too many elements", shape_str(e.shape)) end
      end
      if #e.shape > 8 then tbad("%d dims, at most 8 are supported", #e.shape) end
      local o = e.data_offsets
      if type(o) ~= "table" or #o ~= 2 or math.type(o[1]) ~= "integer" or math.type(o[2]) ~= "integer" then
        tbad("data_offsets must be two integers")
      end
      local b, t = o[1], o[2]
      if b < 0 or t < b or t > data_len then
        tbad("data_offsets [%d, %d] out of range of the %d data bytes", b, t, data_len)
      end
      if t - b ~= numel * info[3] then
        tbad("%d bytes do not hold shape %s of %s (%d bytes)", t - b, shape_str(e.shape), e.dtype, numel * info[3])
      end
      list[#list + 1] = { name = name, dtype = e.dtype, shape = e.shape, begin = b, stop = t }
    end
  end
  -- the tensors must tile the data exactly: no overlap, no hole, nothing after
  table.sort(list, function(a, b)
    if a.begin ~= b.begin then return a.begin < b.begin end
    return a.stop < b.stop
  end)
  local at = 0
  for _, e in ipairs(list) do
    if e.begin < at then bad("tensor %q: data_offsets [%d, %d] overlap the previous tensor (ends at %d)", e.name, e.begin, e.stop, at) end
    if e.begin > at then bad("tensor %q: bytes %d..%d before it belong to no tensor", e.name, at, e.begin) end
    at = e.stop
  end
  if at ~= data_len then bad("bytes %d..%d at the end belong to no tensor", at, data_len) end
  return list, metadata
end

-- The table of contents of a whole safetensors image s (as load_safetensors
-- reads it): the list, the metadata and the byte offset of the data.
local function parse_safetensors(s, path)
  local bad = failer(path)
  local n = header_length(s:sub(1, 8), #s, bad)
  local list, metadata = parse_header(s:sub(9, 8 + n), #s - 8 - n, bad)
  return list, metadata, 8 + n
end

-- load_safetensors(path) -> {name = tensor}, metadata. F32, F64 and I32
-- load as such; F16 and BF16 load as f32; I64, I16, U16, I8, U8 and BOOL as
-- i32 (an I64 value outside 32 bits is an error). The length prefix and the
-- header are checked against the file's size before the data is read.
function IO.load_safetensors(path)
  if type(path) ~= "string" then
    error(("moonflow.io.load_safetensors: path must be a string, got %s"):format(type(path)), 2)
  end
  local f, err = io.open(path, "rb")
  if not f then error(("moonflow.io.load_safetensors: cannot open %s"):format(err), 2) end
  local bad = failer(path)
  local ok, list, metadata, data = pcall(function()
    local size = f:seek("end")
    if not size then bad("cannot read the file's size") end
    f:seek("set", 0)
    local n = header_length(f:read(8) or "", size, bad)
    local lst, meta = parse_header(f:read(n) or "", size - 8 - n, bad)
    local d = f:read(size - 8 - n) or ""
    if #d ~= size - 8 - n or f:read(1) then bad("the file changed while it was read") end
    return lst, meta, d
  end)
  f:close()
  if not ok then error(list, 0) end
  local out = {}
  for _, e in ipairs(list) do
    local info = ST[e.dtype]
    local ok2, t = pcall(core.decode, data, e.begin, e.shape, info[1], false, info[2])
    if not ok2 then
      error(("moonflow.io.load_safetensors: %s: tensor %q: %s"):format(path, e.name, t), 0)
    end
    out[e.name] = t
  end
  return out, metadata
end

IO.parse_safetensors = parse_safetensors

return IO
