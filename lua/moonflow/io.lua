-- mf.io: safetensors files and whole checkpoints, npy and IDX readers.
-- Every loader validates the whole file before it creates a tensor, and
-- every writer goes through a temporary file renamed over the target.
local core = require "moonflow.core"
local J = require "moonflow.json"

local IO = {}

local is_tensor = require("moonflow.autograd").is_tensor

local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

---------------------------------------------------------------- safetensors
-- safetensors dtype -> element type for core.decode and the tensor dtype it loads as
local ST = {
  F64 = { "f64", "f64", 8 }, F32 = { "f32", "f32", 4 }, I32 = { "i32", "i32", 4 },
  F16 = { "f16", "f32", 2 }, BF16 = { "bf16", "f32", 2 }, I64 = { "i64", "i32", 8 },
  I16 = { "i16", "i32", 2 }, U16 = { "u16", "i32", 2 }, I8 = { "i8", "i32", 1 },
  U8 = { "u8", "i32", 1 }, BOOL = { "bool", "i32", 1 },
}
local TO_ST = { f32 = "F32", f64 = "F64", i32 = "I32" }
local MAX_HEADER = 100 * 1024 * 1024 -- the reference implementation's limit
local MAX_NUMEL = (1 << 31) - 1 -- kernels index elements with int

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
  local h = J.encode(header)
  h = h .. (" "):rep((8 - #h % 8) % 8) -- the data starts 8-byte aligned
  table.insert(chunks, 1, h)
  table.insert(chunks, 1, string.pack("<I8", #h))
  core.write_file(path, chunks)
  return path
end

local function read_all(fn, path)
  if type(path) ~= "string" then error(("moonflow.io.%s: path must be a string, got %s"):format(fn, type(path)), 3) end
  local f, err = io.open(path, "rb")
  if not f then error(("moonflow.io.%s: cannot open %s"):format(fn, err), 3) end
  local s = f:read("a")
  f:close()
  return s
end

-- The validated table of contents of a safetensors image s: a list of
-- {name, dtype, shape, begin, stop} in file order and the metadata.
local function parse_safetensors(s, path)
  local function bad(fmt, ...)
    error(("moonflow.io.load_safetensors: %s: " .. fmt):format(path, ...), 0)
  end
  if #s < 8 then bad("%d bytes, too short for the 8-byte header length", #s) end
  local n = string.unpack("<I8", s)
  if n < 2 or n > MAX_HEADER then bad("bad header length %d (file of %d bytes)", n, #s) end
  if 8 + n > #s then bad("header of %d bytes runs beyond the end of the file (%d bytes)", n, #s) end
  local ok, header = pcall(J.decode, s:sub(9, 8 + n))
  if not ok then bad("header is not valid JSON: %s", header) end
  if type(header) ~= "table" or getmetatable(header) == J.array_mt then bad("header is not a JSON object") end
  local data_len = #s - 8 - n
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
  return list, metadata, 8 + n
end

-- load_safetensors(path) -> {name = tensor}, metadata. F32, F64 and I32
-- load as such; F16 and BF16 load as f32; I64, I16, U16, I8, U8 and BOOL as
-- i32 (an I64 value outside 32 bits is an error).
function IO.load_safetensors(path)
  local s = read_all("load_safetensors", path)
  local list, metadata, base = parse_safetensors(s, path)
  local out = {}
  for _, e in ipairs(list) do
    local info = ST[e.dtype]
    local ok, t = pcall(core.decode, s, base + e.begin, e.shape, info[1], false, info[2])
    if not ok then
      error(("moonflow.io.load_safetensors: %s: tensor %q: %s"):format(path, e.name, t), 0)
    end
    out[e.name] = t
  end
  return out, metadata
end

IO.parse_safetensors = parse_safetensors

---------------------------------------------------------------- checkpoints
-- A checkpoint is one safetensors file. Each entry of the saved table becomes
-- a metadata string holding its JSON: objects with state_dict() store
-- {"__state__": tree}, generators and Rngs {"__rng__": state}, other values
-- themselves; tensors inside any of them are stored as tensors named by their
-- dotted path and referenced as {"__tensor__": name}.
local FORMAT = "moonflow.checkpoint/1"

-- v has a method of that name; looked up without indexing v itself, since
-- Rngs makes a new generator for any name it is indexed with
local function has(v, method)
  if type(v) ~= "table" then return false end
  if type(rawget(v, method)) == "function" then return true end
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return false end
  local idx = rawget(mt, "__index")
  if type(idx) == "table" then return type(idx[method]) == "function" end
  return type(rawget(mt, method)) == "function"
end

local function pack(v, name, tensors, seen)
  if is_tensor(v) then
    if tensors[name] then error(("two tensors would be named %q"):format(name), 0) end
    tensors[name] = v
    return { __tensor__ = name }
  end
  if type(v) == "table" and getmetatable(v) == nil then
    seen = seen or {}
    if seen[v] then error(("a cycle at %s"):format(name), 0) end
    seen[v] = true
    local out = {}
    for k, x in pairs(v) do out[k] = pack(x, name .. "." .. tostring(k), tensors, seen) end
    seen[v] = nil
    return out
  end
  return v
end

-- save(path, {model = net, ema = ema, optim = opt, step = n, rngs = rngs, config = ...})
function IO.save(path, ck)
  if type(path) ~= "string" then error("moonflow.io.save: path must be a string", 2) end
  if type(ck) ~= "table" then error(("moonflow.io.save: expected a table of entries, got %s"):format(type(ck)), 2) end
  local tensors, meta = {}, { ["moonflow.format"] = FORMAT }
  for key, v in pairs(ck) do
    if type(key) ~= "string" or key == "moonflow.format" then
      error(("moonflow.io.save: entry key %s is not a usable name"):format(tostring(key)), 2)
    end
    local ok, js = pcall(function()
      local tree
      if has(v, "state_dict") then
        tree = { __state__ = pack(v:state_dict(), key, tensors) }
      elseif has(v, "get_state") then
        tree = { __rng__ = v:get_state() }
      else
        tree = pack(v, key, tensors)
      end
      return J.encode(tree, { lenient = true })
    end)
    if not ok then error(("moonflow.io.save: entry %q: %s"):format(key, js), 2) end
    meta[key] = js
  end
  return IO.save_safetensors(path, tensors, meta)
end

local function unpack_tree(v, tensors, used, where)
  if v == J.null then return nil end
  if type(v) ~= "table" then return v end
  if v.__tensor__ ~= nil then
    local t = tensors[v.__tensor__]
    if not t then error(("%s refers to tensor %q, which the file lacks"):format(where, tostring(v.__tensor__)), 0) end
    used[v.__tensor__] = true
    return t
  end
  local out = {}
  for k, x in pairs(v) do out[k] = unpack_tree(x, tensors, used, where) end
  return out
end

-- Checks that `loaded` has exactly the tensors of `own` (same paths, same
-- shapes); returns nil or a message.
local function compare(own, loaded, path, problems)
  if is_tensor(own) then
    if not is_tensor(loaded) then
      problems[#problems + 1] = ("%s is missing"):format(path)
    elseif shape_str(core.shape(own)) ~= shape_str(core.shape(loaded)) then
      problems[#problems + 1] = ("%s has shape %s in the file but %s in the target"):format(
        path, shape_str(core.shape(loaded)), shape_str(core.shape(own)))
    end
    return
  end
  if type(own) ~= "table" then return end
  loaded = type(loaded) == "table" and not is_tensor(loaded) and loaded or {}
  for k, x in pairs(own) do compare(x, loaded[k], path .. "." .. tostring(k), problems) end
  local function any_tensor(v)
    if is_tensor(v) then return true end
    if type(v) ~= "table" then return false end
    for _, x in pairs(v) do if any_tensor(x) then return true end end
    return false
  end
  for k, x in pairs(loaded) do
    if own[k] == nil and any_tensor(x) then
      problems[#problems + 1] = ("%s.%s is in the file but not in the target"):format(path, tostring(k))
    end
  end
end

-- A deep copy of a target's state, to put back if applying a later target
-- fails (only for targets that cannot check a state before applying it).
local function snapshot(obj)
  local function copy(v)
    if is_tensor(v) then return core.clone(v) end
    if type(v) ~= "table" then return v end
    local out = {}
    for k, x in pairs(v) do out[k] = copy(x) end
    return out
  end
  if has(obj, "state_dict") then return copy(obj:state_dict()) end
  if has(obj, "get_state") then return copy(obj:get_state()) end
end

-- load(path[, targets]) -> checkpoint table. targets maps entry names to
-- objects to restore in place ({model = net, ema = ema, optim = opt, rngs = rngs}).
-- Every target checks its entry first (names, dtypes, shapes, counts, RNG
-- states; objects with _prepare_load / _prepare_state check without
-- changing anything), then all are applied: a failed load changes nothing.
-- Entries without a target come back as plain values (state dicts as tables
-- of tensors). An entry "step" must be an integer >= 0.
function IO.load(path, targets)
  local tensors, meta = IO.load_safetensors(path)
  local function bad(fmt, ...) error(("moonflow.io.load: %s: " .. fmt):format(path, ...), 0) end
  if meta["moonflow.format"] ~= FORMAT then
    bad("not a moonflow checkpoint (metadata moonflow.format is %s)", tostring(meta["moonflow.format"]))
  end
  local ck, kinds, used = {}, {}, {}
  for key, js in pairs(meta) do
    if key ~= "moonflow.format" then
      local ok, tree = pcall(J.decode, js)
      if not ok then bad("entry %q: %s", key, tree) end
      local ok2, v = pcall(unpack_tree, tree, tensors, used, ("entry %q"):format(key))
      if not ok2 then bad("%s", v) end
      if type(v) == "table" and v.__state__ ~= nil then
        ck[key], kinds[key] = v.__state__, "state"
      elseif type(v) == "table" and v.__rng__ ~= nil then
        ck[key], kinds[key] = v.__rng__, "rng"
      else
        ck[key] = v
      end
    end
  end
  for name in pairs(tensors) do
    if not used[name] then bad("tensor %q belongs to no entry", name) end
  end
  if ck.step ~= nil and (math.type(ck.step) ~= "integer" or ck.step < 0) then
    bad("entry \"step\" must be an integer >= 0, got %s", tostring(ck.step))
  end
  if targets == nil then return ck end
  if type(targets) ~= "table" then bad("targets must be a table, got %s", type(targets)) end
  local keys = {}
  for key in pairs(targets) do
    if type(key) ~= "string" then bad("target key %s is not a string", tostring(key)) end
    keys[#keys + 1] = key
  end
  table.sort(keys)
  -- check everything first
  local checked, unchecked = {}, {}
  for _, key in ipairs(keys) do
    local obj = targets[key]
    if ck[key] == nil then bad("the checkpoint has no entry %q", key) end
    local method, prepare
    if has(obj, "load_state_dict") then
      if kinds[key] ~= "state" then bad("entry %q is not a state dict", key) end
      if has(obj, "state_dict") then
        local problems = {}
        compare(obj:state_dict(), ck[key], key, problems)
        if #problems > 0 then
          table.sort(problems)
          bad("entry %q does not match its target: %s", key, table.concat(problems, "; "))
        end
      end
      method, prepare = "load_state_dict", "_prepare_load"
    elseif has(obj, "set_state") then
      if kinds[key] ~= "rng" or type(ck[key]) ~= "table" then bad("entry %q is not a generator state", key) end
      method, prepare = "set_state", "_prepare_state"
    else
      bad("target %q has neither load_state_dict nor set_state", key)
    end
    if has(obj, prepare) then
      local ok, apply = pcall(obj[prepare], obj, ck[key])
      if not ok then bad("entry %q: %s", key, tostring(apply):gsub("^[^:]*:%d+: ", "")) end
      checked[#checked + 1] = apply
    else
      unchecked[#unchecked + 1] = { key = key, obj = obj, method = method }
    end
  end
  -- targets that cannot check first are applied first, each one rolled back
  -- if a later one fails
  for i, u in ipairs(unchecked) do
    u.saved = snapshot(u.obj)
    local ok, err = pcall(u.obj[u.method], u.obj, ck[u.key])
    if not ok then
      for j = i, 1, -1 do
        local r = unchecked[j]
        if r.saved ~= nil then pcall(r.obj[r.method], r.obj, r.saved) end
      end
      bad("entry %q: %s", u.key, tostring(err):gsub("^[^:]*:%d+: ", ""))
    end
  end
  for _, apply in ipairs(checked) do apply() end
  return ck
end

---------------------------------------------------------------- npy
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

---------------------------------------------------------------- IDX
local IDX = { [0x08] = { "u8", 1 }, [0x09] = { "i8", 1 }, [0x0B] = { "i16", 2 }, [0x0C] = { "i32", 4 },
  [0x0D] = { "f32", 4 }, [0x0E] = { "f64", 8 } }

-- load_idx(path[, opts]) -> tensor from an IDX file (MNIST's format), gzipped
-- or not. Unsigned-byte arrays of 2 or more dims are images: f32 scaled to
-- [-1, 1] (v / 127.5 - 1); 1-D byte arrays are labels: i32. opts.dtype and
-- opts.scale = false (raw values) override.
-- gzip data is inflated in a stream: the header first, then exactly the
-- bytes it announces, so memory stays bounded by the header's size; content
-- longer or shorter than that is an error. Concatenated gzip members read
-- as one stream (as gzip does); other bytes after the gzip data are an error.
function IO.load_idx(path, opts)
  opts = opts or {}
  local fn = "moonflow.io.load_idx"
  if type(path) ~= "string" then error(fn .. ": path must be a string", 2) end
  local function strip(e) return (tostring(e):gsub("^moonflow%.[%w_]+: ", "")) end
  local ok, r = pcall(core.open_reader, path)
  if not ok then error(fn .. ": " .. strip(r), 0) end
  local function bad(fmt, ...)
    r:close()
    error((fn .. ": %s: " .. fmt):format(path, ...), 0)
  end
  local function read(n)
    local ok2, s = pcall(r.read, r, n)
    if not ok2 then
      r:close()
      error(fn .. ": " .. strip(s), 0)
    end
    return s
  end
  local head = read(4)
  if #head < 4 or head:byte(1) ~= 0 or head:byte(2) ~= 0 then bad("not an IDX file (bad magic)") end
  local info = IDX[head:byte(3)]
  if not info then bad("unknown IDX element type 0x%02x", head:byte(3)) end
  local nd = head:byte(4)
  if nd < 1 or nd > 8 then bad("%d dims, 1 to 8 are supported", nd) end
  local sizes = read(4 * nd)
  if #sizes < 4 * nd then bad("truncated: the %d sizes need %d bytes", nd, 4 + 4 * nd) end
  local shape, numel = {}, 1
  for i = 1, nd do
    shape[i] = string.unpack(">I4", sizes, 4 * i - 3)
    -- each factor < 2^32 and the product checked at each step: no overflow
    numel = numel * shape[i]
    if shape[i] > MAX_NUMEL or numel > MAX_NUMEL then bad("sizes %s: too many elements", shape_str(shape)) end
  end
  local want = numel * info[2]
  local data = read(want)
  if #data < want then
    bad("%d data bytes for shape %s of %s, expected %d", #data, shape_str(shape), info[1], want)
  end
  if #read(1) > 0 then
    bad("the content is longer than the %d data bytes that shape %s of %s needs", want, shape_str(shape), info[1])
  end
  r:close()
  local image = info[1] == "u8" and nd >= 2
  local dtype = opts.dtype or ((info[1] == "f32" or info[1] == "f64" or image) and "f32" or "i32")
  local scale, shift = 1, 0
  if image and opts.scale ~= false and dtype ~= "i32" then scale, shift = 1 / 127.5, -1 end
  local ok2, t = pcall(core.decode, data, 0, shape, info[1], true, dtype, scale, shift)
  if not ok2 then bad("%s", t) end
  return t
end

return IO
