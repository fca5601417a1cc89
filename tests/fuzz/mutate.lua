-- Byte- and token-level mutations of a seed input; every choice comes from math.random,
-- so an input is reproduced by reseeding the generator (tests/fuzz/fuzz.lua).
local M = {}

local R = math.random
local MAX_LEN = 1 << 20

-- integers at the edges of the widths file formats use
local INTS = { 0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 100, 127, 128, 255, 256, 1000, 1023, 1024,
  4096, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000,
  math.maxinteger, math.mininteger, -1, -2, -128, -32768, -0x80000000 }
-- the same as text, plus numbers JSON and Python literals allow and overflow
local NUMS = { "0", "-0", "1", "-1", "2", "255", "256", "65535", "65536", "2147483647", "2147483648",
  "-2147483649", "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
  "-9223372036854775809", "18446744073709551616", "99999999999999999999999", "1e309", "-1e309",
  "1.5", "0.0", "1e2", "1E-400", "0x10", "01", "1.", ".5", "-", "+1", "NaN", "Infinity", "" }

local function clip(s) return #s > MAX_LEN and s:sub(1, MAX_LEN) or s end
local function pos(s) return R(1, #s + 1) end

local function rand_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(R(0, 255)) end
  return table.concat(t)
end

local function put(s, at, bytes) return s:sub(1, at - 1) .. bytes .. s:sub(at + #bytes) end

-- an interesting integer of 1, 2, 4 or 8 bytes, little- or big-endian, over byte `at`
local function int_bytes()
  local w = ({ 1, 2, 4, 8 })[R(1, 4)]
  local v = INTS[R(1, #INTS)]
  local le = string.pack("<i8", v):sub(1, w)
  return R(2) == 1 and le or le:reverse()
end

local ops = {}
function ops.flip(s)
  if #s == 0 then return s end
  local i = R(1, #s)
  return put(s, i, string.char(s:byte(i) ~ (1 << R(0, 7))))
end
function ops.byte(s)
  if #s == 0 then return string.char(R(0, 255)) end
  return put(s, R(1, #s), string.char(R(0, 255)))
end
function ops.int(s)
  local b = int_bytes()
  if #s < #b then return s .. b end
  return put(s, R(1, #s - #b + 1), b)
end
function ops.insert(s)
  local at, n = pos(s), R(1, 16)
  local ins = R(2) == 1 and rand_bytes(n) or string.char(R(0, 255)):rep(n)
  return s:sub(1, at - 1) .. ins .. s:sub(at)
end
function ops.delete(s)
  if #s == 0 then return s end
  local a = R(1, #s)
  local b = math.min(#s, a + R(0, R(2) == 1 and 8 or 256))
  return s:sub(1, a - 1) .. s:sub(b + 1)
end
function ops.duplicate(s) -- a chunk copied elsewhere, or repeated in place (nesting, long runs)
  if #s == 0 then return s end
  local a = R(1, #s)
  local b = math.min(#s, a + R(0, 32))
  local chunk = s:sub(a, b)
  if R(3) == 1 then return s:sub(1, b) .. chunk:rep(R(1, 300)) .. s:sub(b + 1) end
  local at = pos(s)
  return s:sub(1, at - 1) .. chunk .. s:sub(at)
end
function ops.truncate(s) return s:sub(1, R(0, #s)) end
function ops.splice(s, other) -- a prefix of one seed and a suffix of another
  return s:sub(1, R(0, #s)) .. other:sub(R(1, #other + 1))
end
function ops.number(s) -- a decimal number in the text replaced by an edge value
  local spans, init = {}, 1
  while #spans < 64 do
    local a, b = s:find("%-?%d+[%.eE]?[%-+]?%d*", init)
    if not a then break end
    spans[#spans + 1] = { a, b }
    init = b + 1
  end
  if #spans == 0 then return ops.insert(s) end
  local sp = spans[R(1, #spans)]
  return s:sub(1, sp[1] - 1) .. NUMS[R(1, #NUMS)] .. s:sub(sp[2] + 1)
end
function ops.token(s, _, dict) -- a dictionary token inserted or written over bytes
  local tok = dict[R(1, #dict)]
  local at = pos(s)
  if R(2) == 1 then return s:sub(1, at - 1) .. tok .. s:sub(at) end
  return s:sub(1, at - 1) .. tok .. s:sub(at + #tok)
end

local names = {}
for k in pairs(ops) do names[#names + 1] = k end
table.sort(names)

-- per loader: tokens of its format, and header fields to hit directly
M.dict = {
  json = { '"', "\\", "\\u", "\\ud800", "\\udc00", "\\u0000", "{", "}", "[", "]", ":", ",", "null", "true",
    "false", "-", ".", "e", "E+", '"":', " ", "\t", "\n", "\0", "\xff", "\xc3", "[[[[[[[[[[", '{"a":' },
  safetensors = { '"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"F16"', '"BF16"', '"I64"',
    '"U8"', '"BOOL"', '"F64"', '"X"', "[]", "[0]", "[-1]", "[1,2,3]", "[0,0]", "null", "{}", '"', ",", ":" },
  checkpoint = { '"__tensor__"', '"__state__"', '"__rng__"', '"moonflow.checkpoint/1"', '"moonflow.format"',
    '\\"__tensor__\\"', '\\"__state__\\"', "null", "[]", "{}", '"step"', '"model.', "\\u0000", '"' },
  npy = { "'descr'", "'<f4'", "'>f8'", "'|b1'", "'<i8'", "'<c8'", "'|O'", "'<U3'", "'fortran_order'",
    "True", "False", "'shape'", "()", "(0,)", "(1,)", ",", "(2, 3)", "(-1,)", "((", "'", "{", "}" },
  idx = { "\0\0\8\1", "\0\0\8\3", "\0\0\14\8", "\0\0\13\0", "\255\255\255\255", "\0\0\0\0", "\127\255\255\255" },
  gzip = { "\31\139\8\0", "\31\139\8\8", "\31\139\8\4", "\31\139\8\2", "\0\0\0\0", "\255\255\255\255", "\3\0" },
}

-- header fields at known places: the length prefix of safetensors and npy, IDX sizes,
-- gzip's flags and trailer (ISIZE)
local function header_field(s, loader)
  local b = int_bytes()
  if loader == "safetensors" or loader == "checkpoint" then
    local n = R(3) == 1 and INTS[R(1, #INTS)] or (#s - 8 + R(-16, 16))
    return string.pack("<i8", n) .. s:sub(9)
  elseif loader == "npy" then
    if R(2) == 1 then return s:sub(1, 6) .. string.char(R(0, 4), R(0, 1)) .. s:sub(9) end
    return put(s, 9, (R(2) == 1 and string.pack("<I2", R(0, 0xffff)) or b:sub(1, 2)))
  elseif loader == "idx" then
    if R(3) == 1 then return put(s, 3, string.char(R(0, 255), R(0, 12))) end
    return put(s, 5 + 4 * R(0, 3), string.pack(">I4", INTS[R(1, #INTS)] & 0xffffffff))
  elseif loader == "gzip" and #s >= 10 then
    if R(2) == 1 then return put(s, 4, string.char(R(0, 255))) end
    return s:sub(1, math.max(0, #s - 4)) .. string.pack("<I4", INTS[R(1, #INTS)] & 0xffffffff)
  end
  return ops.int(s)
end

-- 1 to 4 stacked mutations of seed (other: a second seed for splicing)
function M.mutate(seed, other, loader)
  local s = seed
  local n = R(4) == 1 and R(2, 4) or 1
  for _ = 1, n do
    local k = R(1, #names + 1)
    if k > #names then
      s = header_field(s, loader)
    else
      s = ops[names[k]](s, other, M.dict[loader] or M.dict.json)
    end
  end
  return clip(s)
end

return M
