-- Floats keep every bit through every loader: -0.0, infinities, NaN payloads
-- and denormals come back exactly as they were written.
local mf = require "moonflow"
local H = require "helpers"

local dir = H.tmpdir()
teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

-- f32 and f64 bit patterns: -0, +inf, -inf, quiet NaN with a payload, a
-- negative NaN, the smallest and largest denormals (negative), 1, a
-- signaling NaN
local F32 = { 0x80000000, 0x7f800000, 0xff800000, 0x7fc12345, 0xffc00001, 0x00000001, 0x807fffff, 0x3f800000,
  0x7f800001 }
local F64 = { 0x8000000000000000, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000012345,
  0xfff8000000000001, 0x0000000000000001, 0x800fffffffffffff, 0x3ff0000000000000, 0x7ff0000000000001 }

local function bytes(fmt, words)
  local out = {}
  for i, w in ipairs(words) do out[i] = string.pack(fmt, w) end
  return table.concat(out)
end
local LE32, LE64 = bytes("<I4", F32), bytes("<i8", F64)
local BE32, BE64 = bytes(">I4", F32), bytes(">i8", F64)

-- the tensor's bytes as hex words, for a readable failure
local function hex(s, size)
  local out = {}
  for i = 1, #s, size do out[#out + 1] = ("%0" .. 2 * size .. "x"):format(string.unpack("<I" .. size, s, i)) end
  return table.concat(out, " ")
end
local function same_bits(t, want, size, what)
  assert.are.equal(hex(want, size), hex(mf.core.tobytes(t), size), what)
end

local function npy(descr, n, data)
  local dict = ("{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }"):format(descr, n)
  dict = dict .. (" "):rep(64 - 10 - #dict - 1) .. "\n"
  return "\x93NUMPY\1\0" .. string.pack("<I2", #dict) .. dict .. data
end

describe("io: float bits", function()
  it("core.decode keeps f32 and f64 bits (little- and big-endian)", function()
    same_bits(mf.core.decode(LE32, 0, { #F32 }, "f32", false, "f32"), LE32, 4, "f32 le")
    same_bits(mf.core.decode(BE32, 0, { #F32 }, "f32", true, "f32"), LE32, 4, "f32 be")
    same_bits(mf.core.decode(LE64, 0, { #F64 }, "f64", false, "f64"), LE64, 8, "f64 le")
    same_bits(mf.core.decode(BE64, 0, { #F64 }, "f64", true, "f64"), LE64, 8, "f64 be")
  end)

  it("f16 and bf16 widen to f32 with their sign, infinities, NaN payloads and denormals", function()
    -- f16: -0, +inf, -inf, NaN payload 0x155, smallest denormal 2^-24, -largest denormal
    local h = bytes("<I2", { 0x8000, 0x7c00, 0xfc00, 0x7d55, 0x0001, 0x83ff })
    local want = bytes("<I4", { 0x80000000, 0x7f800000, 0xff800000, 0x7f800000 | (0x155 << 13), 0x33800000,
      (string.unpack("<I4", string.pack("<f", -1023 * 2.0 ^ -24))) })
    same_bits(mf.core.decode(h, 0, { 6 }, "f16", false, "f32"), want, 4, "f16")
    local b = bytes("<I2", { 0x8000, 0x7f80, 0x7fc1, 0x0001 })
    same_bits(mf.core.decode(b, 0, { 4 }, "bf16", false, "f32"),
      bytes("<I4", { 0x80000000, 0x7f800000, 0x7fc10000, 0x00010000 }), 4, "bf16")
  end)

  it("safetensors round trips are bit-exact", function()
    local a = mf.core.from_bytes(LE32, { #F32 }, "f32")
    local d = mf.core.from_bytes(LE64, { #F64 }, "f64")
    local p = mf.io.save_safetensors(dir .. "/bits.safetensors", { a = a, d = d })
    local back = mf.io.load_safetensors(p)
    same_bits(back.a, LE32, 4, "F32")
    same_bits(back.d, LE64, 8, "F64")
  end)

  it("npy loads are bit-exact, little- and big-endian", function()
    same_bits(mf.io.load_npy(H.spit(dir .. "/a.npy", npy("<f4", #F32, LE32))), LE32, 4, "<f4")
    same_bits(mf.io.load_npy(H.spit(dir .. "/b.npy", npy("<f8", #F64, LE64))), LE64, 8, "<f8")
    same_bits(mf.io.load_npy(H.spit(dir .. "/c.npy", npy(">f4", #F32, BE32))), LE32, 4, ">f4")
    same_bits(mf.io.load_npy(H.spit(dir .. "/e.npy", npy(">f8", #F64, BE64))), LE64, 8, ">f8")
  end)

  it("IDX f32 and f64 loads are bit-exact", function()
    local function idx(typ, n, data) return string.char(0, 0, typ, 1) .. string.pack(">I4", n) .. data end
    same_bits(mf.io.load_idx(H.spit(dir .. "/f.idx", idx(0x0D, #F32, BE32))), LE32, 4, "idx f32")
    same_bits(mf.io.load_idx(H.spit(dir .. "/d.idx", idx(0x0E, #F64, BE64))), LE64, 8, "idx f64")
  end)

  it("checkpoint round trips are bit-exact", function()
    local a = mf.core.from_bytes(LE32, { #F32 }, "f32")
    local d = mf.core.from_bytes(LE64, { #F64 }, "f64")
    local p = dir .. "/bits.ckpt"
    mf.io.save(p, { w = { a = a, d = d } })
    local ck = mf.io.load(p)
    same_bits(ck.w.a, LE32, 4, "checkpoint f32")
    same_bits(ck.w.d, LE64, 8, "checkpoint f64")
  end)
end)
