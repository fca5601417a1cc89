local mf = require "moonflow"
local H = require "helpers"

local dir = H.tmpdir()

local spit = H.spit

-- an npy v1.0 (or v2.0) image the way numpy.save writes it: magic, version,
-- header length, a dict literal padded with spaces to 64 bytes ending in \n
local function npy(descr, shape, data, opts)
  opts = opts or {}
  local sh = #shape == 1 and ("(%d,)"):format(shape[1]) or "(" .. table.concat(shape, ", ") .. ")"
  local dict = ("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }"):format(descr, opts.fortran or "False", sh)
  local v2 = opts.version == 2
  local pre = v2 and 12 or 10
  local total = math.ceil((pre + #dict + 1) / 64) * 64
  dict = dict .. (" "):rep(total - pre - #dict - 1) .. "\n"
  local head = "\x93NUMPY" .. (v2 and "\2\0" .. string.pack("<I4", #dict) or "\1\0" .. string.pack("<I2", #dict))
  return head .. dict .. data
end

local function packs(fmt, values)
  local out = {}
  for i, v in ipairs(values) do out[i] = string.pack(fmt, v) end
  return table.concat(out)
end

-- an IDX image: 0, 0, type, ndim, big-endian u32 sizes, big-endian data
local function idx(typ, shape, data)
  local s = string.char(0, 0, typ, #shape)
  for _, d in ipairs(shape) do s = s .. string.pack(">I4", d) end
  return s .. data
end

describe("io.load_npy", function()

  it("reads f32, f64, i32 and u8 arrays in C order, each as its own kind (f32, f64, i32, i32)", function()
    local vals = { 1.5, -2.25, 3, 0, 1e-3, 7 }
    local want = mf.tensor(vals):totable() -- the f32 roundings
    for _, c in ipairs { { "<f4", "<f", "f32" }, { "<f8", "<d", "f64" }, { "<i4", "<i4", "i32" } } do
      local v = c[1] == "<i4" and { 1, -2, 3, 0, 5, 7 } or vals
      local t = mf.io.load_npy(spit(dir .. "/a.npy", npy(c[1], { 2, 3 }, packs(c[2], v))))
      assert.are.same({ 2, 3 }, t:shape())
      assert.are.equal(c[3], t:dtype())
      local expect = c[1] == "<f4" and want or v
      H.close(t:tolist(), expect, 0, 0, c[1])
      assert.are.equal("f32", mf.io.load_npy(dir .. "/a.npy", { dtype = "f32" }):dtype())
    end
    local u = mf.io.load_npy(spit(dir .. "/u.npy", npy("|u1", { 4 }, string.char(0, 1, 128, 255))))
    assert.are.same({ 0, 1, 128, 255 }, u:totable())
  end)

  it("keeps integers exact with dtype i32, reads int64 labels and v2 headers and 0-d arrays", function()
    local t = mf.io.load_npy(spit(dir .. "/l.npy", npy("<i8", { 3 }, packs("<i8", { 0, 9, -4 }), { version = 2 })),
      { dtype = "i32" })
    assert.are.equal("i32", t:dtype())
    assert.are.same({ 0, 9, -4 }, t:totable())
    local s = mf.io.load_npy(spit(dir .. "/s.npy", npy("<f4", {}, string.pack("<f", 0.5))))
    assert.are.same({}, s:shape())
    assert.are.equal(0.5, s:item())
  end)

  it("rejects what it cannot read, naming the file", function()
    local p = dir .. "/bad.npy"
    local function rejects(img, ...)
      spit(p, img)
      H.errors(function() mf.io.load_npy(p) end, "moonflow.io.load_npy", p, ...)
    end
    rejects("not an npy file at all", "bad magic")
    rejects(npy("<c8", { 1 }, ("\0"):rep(8)), "unsupported dtype <c8")
    rejects(npy("<f4", { 3 }, packs("<f", { 1, 2 })), "8 data bytes for shape {3} of <f4, expected 12")
    rejects(npy("<f4", { 1 }, packs("<f", { 1, 2 })), "8 data bytes for shape {1}")
    rejects(npy("<f4", { 1 << 32, 1 << 32 }, ""), "too many elements")
    rejects(("\x93NUMPY\1\0" .. string.pack("<I2", 500) .. "{}"), "beyond the end of the file")
    spit(p, npy("<f8", { 1 }, string.pack("<d", 0.5)))
    H.errors(function() mf.io.load_npy(p, { dtype = "i32" }) end, "moonflow.io.load_npy", "cannot convert f64 elements to i32")
    H.errors(function() mf.io.load_npy(dir .. "/missing.npy") end, "moonflow.io.load_npy", "missing.npy")
  end)
end)

describe("io.load_idx", function()
  it("reads u8 images as f32 in [-1, 1] and u8 labels as i32, gzipped or not", function()
    local px = {}
    for i = 1, 2 * 3 * 2 do px[i] = (i * 37) % 256 end
    px[1], px[2] = 0, 255
    local img = idx(0x08, { 2, 3, 2 }, string.char(table.unpack(px)))
    local plain = spit(dir .. "/img-idx3-ubyte", img)
    local gz = dir .. "/img-idx3-ubyte.gz"
    mf.core.write_file(gz, img, true)
    local f = assert(io.open(gz, "rb"))
    assert.are.equal("\31\139", f:read(2)) -- really gzip
    f:close()
    for _, path in ipairs { plain, gz } do
      local t = mf.io.load_idx(path)
      assert.are.same({ 2, 3, 2 }, t:shape())
      assert.are.equal("f32", t:dtype())
      H.close(t:tolist(), H.map(function(v) return v / 127.5 - 1 end, px), 1e-6, 1e-6)
      assert.are.equal(-1, t:tolist()[1])
      assert.are.equal(1, t:tolist()[2])
    end
    local raw = mf.io.load_idx(plain, { scale = false })
    assert.are.same(px, raw:tolist())
    local labels = mf.io.load_idx(spit(dir .. "/lab-idx1-ubyte", idx(0x08, { 4 }, string.char(9, 0, 3, 1))))
    assert.are.equal("i32", labels:dtype())
    assert.are.same({ 9, 0, 3, 1 }, labels:totable())
  end)

  it("reads big-endian i32, i16, f32 and f64 payloads", function()
    local t = mf.io.load_idx(spit(dir .. "/i.idx", idx(0x0C, { 3 }, string.pack(">i4>i4>i4", -1, 70000, 5))))
    assert.are.same({ -1, 70000, 5 }, t:totable())
    t = mf.io.load_idx(spit(dir .. "/h.idx", idx(0x0B, { 2 }, string.pack(">i2>i2", -300, 12))))
    assert.are.same({ -300, 12 }, t:totable())
    t = mf.io.load_idx(spit(dir .. "/f.idx", idx(0x0D, { 1, 2 }, string.pack(">f>f", 0.25, -8))))
    assert.are.same({ { 0.25, -8 } }, t:totable())
    t = mf.io.load_idx(spit(dir .. "/d.idx", idx(0x0E, { 2 }, string.pack(">d>d", 0.125, 3))))
    assert.are.same({ 0.125, 3 }, t:totable())
  end)

  it("rejects bad magic, unknown types, truncated data and corrupt gzip", function()
    local p = dir .. "/bad.idx"
    local function rejects(img, ...)
      spit(p, img)
      H.errors(function() mf.io.load_idx(p) end, "moonflow.io.load_idx", p, ...)
    end
    rejects("\1\0\8\1", "bad magic")
    rejects(idx(0x07, { 1 }, "\0"), "unknown IDX element type 0x07")
    rejects(idx(0x08, { 2, 2 }, "\1\2\3"), "3 data bytes for shape {2, 2} of u8, expected 4")
    rejects(string.char(0, 0, 8, 3) .. string.pack(">I4", 2), "truncated")
    rejects(string.char(0, 0, 8, 0), "0 dims")
    -- sizes whose product wraps around 64 bits must not pass the length check
    rejects(string.char(0, 0, 8, 2) .. string.pack(">I4>I4", 0xFFFFFFFF, 0xFFFFFFFF), "too many elements")
    -- a gzip stream cut in half
    local gz = dir .. "/cut.gz"
    mf.core.write_file(gz, idx(0x08, { 64, 64 }, string.rep("\7\200\31", 64 * 64 // 3 + 1):sub(1, 4096)), true)
    local f = assert(io.open(gz, "rb"))
    local whole = f:read("a")
    f:close()
    rejects(whole:sub(1, #whole // 2), "corrupt or truncated gzip")
    H.errors(function() mf.io.load_idx(dir .. "/none.gz") end, "moonflow.io.load_idx", "none.gz", "cannot open")
  end)
end)

teardown(function() os.execute(("rm -rf %q"):format(dir)) end)
