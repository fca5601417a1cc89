-- Writes the seed corpora tests/fuzz/corpus/<loader>/: small valid files of every
-- kind each loader reads, plus a few edge cases. Deterministic; rerun after a format
-- change:  MOONFLOW_BUILD=build lua5.4 tests/fuzz/gen_corpus.lua
local root = os.getenv("MOONFLOW_ROOT") or "."
local build = os.getenv("MOONFLOW_BUILD") or (root .. "/build")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/tests/fuzz/?.lua;" .. package.path
package.cpath = build .. "/lua/?.so;" .. package.cpath
local mf = require "moonflow"
local core = require "moonflow.core"
local T = require "targets"

local out = root .. "/tests/fuzz/corpus"
local function spit(loader, name, s, gz)
  local dir = out .. "/" .. loader
  os.execute(("mkdir -p %q"):format(dir))
  if gz then core.write_file(dir .. "/" .. name, s, true) return end
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(s)
  f:close()
end

local function slurp(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function packs(fmt, vals)
  local t = {}
  for i, v in ipairs(vals) do t[i] = string.pack(fmt, v) end
  return table.concat(t)
end

---------------------------------------------------------------- safetensors
local dir = os.tmpname()
os.remove(dir)
os.execute(("mkdir -p %q"):format(dir))
local function saved(tensors, meta)
  local p = dir .. "/x.safetensors"
  mf.io.save_safetensors(p, tensors, meta)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
spit("safetensors", "f32_f64_i32.safetensors", saved({
  w = mf.tensor({ { 1, -2, 3.5 }, { 0.25, 1e-3, -7 } }),
  d = mf.tensor({ 1.5, -2.25 }, { dtype = "f64" }),
  n = mf.tensor({ 3, -4, 5, 6 }, { dtype = "i32" }),
}, { note = "seed", step = 3 }))
spit("safetensors", "scalar_and_empty.safetensors", saved({
  s = mf.tensor({ 2 }):reshape({}), e = mf.zeros({ 0, 3 }),
}))
-- hand-written: the dtypes moonflow converts on load (F16, BF16, I64, I16, U16, I8, U8, BOOL)
local function st(entries, data)
  local parts = {}
  for _, e in ipairs(entries) do
    parts[#parts + 1] = ('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'):format(
      e[1], e[2], table.concat(e[3], ","), e[4], e[5])
  end
  parts[#parts + 1] = '"__metadata__":{"k":"v"}'
  local h = "{" .. table.concat(parts, ",") .. "}"
  h = h .. (" "):rep((8 - #h % 8) % 8)
  return string.pack("<I8", #h) .. h .. data
end
spit("safetensors", "converted_dtypes.safetensors", st({
  { "h", "F16", { 2 }, 0, 4 }, { "b", "BF16", { 2 }, 4, 8 }, { "l", "I64", { 1 }, 8, 16 },
  { "s", "I16", { 2 }, 16, 20 }, { "u", "U16", { 2 }, 20, 24 }, { "c", "I8", { 2 }, 24, 26 },
  { "y", "U8", { 2 }, 26, 28 }, { "t", "BOOL", { 2 }, 28, 30 },
}, packs("<I2", { 0x3c00, 0xc000 }) .. packs("<I2", { 0x3f80, 0xbf80 }) .. string.pack("<i8", -5)
  .. packs("<i2", { -3, 4 }) .. packs("<I2", { 65535, 1 }) .. packs("<i1", { -1, 2 }) .. "\255\0" .. "\1\0"))
spit("safetensors", "header_only.safetensors", st({}, ""))

---------------------------------------------------------------- checkpoint
local s = T.training_setup(7)
local x = mf.randn({ 8, 2 })
local loss = ((s.net(x, mf.rand({ 8 })) - x) ^ 2):mean()
s.opt:zero_grad()
loss:backward()
s.opt:step()
s.ema:update()
local p = dir .. "/ck.safetensors"
mf.io.save(p, { model = s.net, ema = s.ema, optim = s.opt, rngs = s.rngs, step = 1,
  config = { lr = 1e-2, data = { name = "two_moons" }, hidden = { 4, 4 } }, note = "seed" })
local f = assert(io.open(p, "rb"))
spit("checkpoint", "trained.safetensors", f:read("a"))
f:close()
local u = T.training_setup(8) -- untrained: the optimizer's step 0, no config
mf.io.save(p, { model = u.net, ema = u.ema, optim = u.opt, rngs = u.rngs })
f = assert(io.open(p, "rb"))
spit("checkpoint", "untrained.safetensors", f:read("a"))
f:close()
os.execute(("rm -rf %q"):format(dir))

---------------------------------------------------------------- npy
local function npy(descr, shape, data, version)
  local sh = #shape == 1 and ("(%d,)"):format(shape[1]) or "(" .. table.concat(shape, ", ") .. ")"
  local dict = ("{'descr': '%s', 'fortran_order': False, 'shape': %s, }"):format(descr, sh)
  local pre = version == 2 and 12 or 10
  local total = math.ceil((pre + #dict + 1) / 64) * 64
  dict = dict .. (" "):rep(total - pre - #dict - 1) .. "\n"
  local len = version == 2 and string.pack("<I4", #dict) or string.pack("<I2", #dict)
  return "\x93NUMPY" .. string.char(version or 1, 0) .. len .. dict .. data
end
spit("npy", "f4_2x3.npy", npy("<f4", { 2, 3 }, packs("<f", { 1, 2, 3, -4, 0.5, 6 })))
spit("npy", "f8_v2.npy", npy("<f8", { 3 }, packs("<d", { 1.25, -2, 1e300 }), 2))
spit("npy", "f2.npy", npy("<f2", { 2 }, packs("<I2", { 0x3c00, 0x7c00 })))
spit("npy", "i8_i2.npy", npy("<i8", { 2 }, packs("<i8", { -1, (1 << 31) - 1 }))) -- int64 loads as i32: in range
spit("npy", "u1_b1.npy", npy("|u1", { 2, 2 }, "\0\1\127\255"))
spit("npy", "bool.npy", npy("|b1", { 3 }, "\0\1\1"))
spit("npy", "scalar.npy", npy("<i4", {}, string.pack("<i4", 42)))
spit("npy", "empty.npy", npy("<f4", { 0 }, ""))

---------------------------------------------------------------- IDX
local function idx(typ, shape, data)
  local h = string.char(0, 0, typ, #shape)
  for _, d in ipairs(shape) do h = h .. string.pack(">I4", d) end
  return h .. data
end
spit("idx", "images_u8.idx", idx(0x08, { 2, 3, 3 }, ("\0\127\255\1\2\3\4\5\6"):rep(2)))
spit("idx", "labels_u8.idx", idx(0x08, { 4 }, "\0\1\9\3"))
spit("idx", "i16.idx", idx(0x0B, { 2 }, packs(">i2", { -2, 300 })))
spit("idx", "i32.idx", idx(0x0C, { 1, 2 }, packs(">i4", { -70000, 5 })))
spit("idx", "f32.idx", idx(0x0D, { 2 }, packs(">f", { 1.5, -3 })))
spit("idx", "f64.idx", idx(0x0E, { 1 }, packs(">d", { 2.5 })))
spit("idx", "images_u8.idx.gz", idx(0x08, { 3, 2, 2 }, ("\0\64\128\255"):rep(3)), true)

---------------------------------------------------------------- gzip
spit("gzip", "text.gz", ("moonflow gzip seed\n"):rep(20), true)
spit("gzip", "empty.gz", "", true)
spit("gzip", "plain.bin", "not compressed at all\n")
spit("gzip", "zeros_64k.gz", ("\0"):rep(1 << 16), true)
do -- two members back to back: zlib reads both
  local d = os.tmpname()
  core.write_file(d, "first member\n", true)
  local a = core.read_file(d) and io.open(d, "rb"):read("a")
  core.write_file(d, "second member\n", true)
  local b = io.open(d, "rb"):read("a")
  os.remove(d)
  spit("gzip", "two_members.gz", a .. b)
end

---------------------------------------------------------------- JSON
spit("json", "header.json", '{"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}')
spit("json", "values.json", '[0,-1,1.5,-2.5e-3,1E+300,true,false,null,"",{}]')
spit("json", "strings.json", '{"esc":"\\"\\\\\\/\\b\\f\\n\\r\\t","u":"\\u00e9\\ud83d\\ude00","utf8":"h\xc3\xa9"}')
spit("json", "nested.json", '{"a":[[[{"b":[1,[2,[3]]]}]]],"c":{"d":{"e":{}}}}')
spit("json", "numbers.json", '[9223372036854775807,-9223372036854775808,18446744073709551616,0.1,1e-320,-0.0]')
spit("json", "checkpoint_meta.json", '{"__state__":{"w":{"__tensor__":"model.w"},"step":3},"__rng__":{"seed":1,"offset":4}}')
---------------------------------------------------------------- libFuzzer seeds
-- png: read by src/io_png.c (tests/fuzz/harness/fuzz_png.c)
do
  local d = os.tmpname()
  for _, c in ipairs({ { 1, 2, 2 }, { 2, 3, 1 }, { 3, 3, 2 }, { 4, 1, 1 } }) do
    local ch, w, h = c[1], c[2], c[3]
    local px = {}
    for i = 1, w * h * ch do px[i] = string.char((i * 37) % 256) end
    core.write_png(d, w, h, ch, table.concat(px))
    spit("png", ("c%d_%dx%d.png"):format(ch, w, h), slurp(d))
  end
  os.remove(d)
end
-- decode: kind byte, dtype/order byte, scale and shift, elements (fuzz_decode.c)
spit("decode", "u8_to_i32", "\0\2" .. ("\0"):rep(16) .. "\1\2\255")
spit("decode", "f16_scaled_f32", "\6\128" .. string.pack("<d<d", 0.5, -1) .. packs("<I2", { 0x3c00, 0x7c00, 0x0001 }))
spit("decode", "i64_be_to_f64", "\5\17" .. ("\0"):rep(16) .. string.pack(">i8", -3))
print("corpus written to " .. out)
