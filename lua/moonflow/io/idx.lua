-- mf.io.load_idx: IDX arrays (MNIST's format), plain or gzipped.
local core = require "moonflow.core"
local U = require "moonflow.io.util"

local IO = {}
local shape_str, MAX_NUMEL = U.shape_str, U.MAX_NUMEL

local IDX = { [0x08] = { "u8", 1 }, [0x09] = { "i8", 1 }, [0x0B] = { "i16", 2 }, [0x0C] = { "i32", 4 },
  [0x0D] = { "f32", 4 }, [0x0E] = { "f64", 8 } }

-- load_idx(path[, opts]) -> tensor from an IDX file (MNIST's format), gzipped
-- or not. Unsigned-byte arrays of 2 or more dims are images: f32 scaled to
-- [-1, 1] (v / 127.5 - 1); 1-D byte arrays are labels: i32; f32 and f64
-- arrays keep their type, other integers load as i32. opts.dtype and
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
  local dtype = opts.dtype or (info[1] == "f64" and "f64") or ((info[1] == "f32" or image) and "f32" or "i32")
  local scale, shift = 1, 0
  if image and opts.scale ~= false and dtype ~= "i32" then scale, shift = 1 / 127.5, -1 end
  local ok2, t = pcall(core.decode, data, 0, shape, info[1], true, dtype, scale, shift)
  if not ok2 then bad("%s", t) end
  return t
end

return IO
