local mf = require "moonflow"
local H = require "helpers"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute(("mkdir -p %q"):format(p)))
  return p
end

local slurp = H.slurp

local spit = H.spit

-- a safetensors image from a header string and data bytes
local function image(header, data) return string.pack("<I8", #header) .. header .. (data or "") end

local function listdir(dir)
  local names = {}
  local p = io.popen(("ls -A %q"):format(dir))
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  table.sort(names)
  return names
end

describe("io.safetensors", function()
  local dir = tmpdir()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

  it("round-trips f32, f64, i32, scalars, empty and strided tensors with metadata", function()
    local a = H.rand_table({ 3, 4 }, 1)
    local ts = {
      a = mf.tensor(a),
      at = mf.tensor(a):transpose(1, 2), -- a strided view is written in C order
      b = mf.tensor({ -7, 0, 2147483647 }, { dtype = "i32" }),
      s = mf.tensor(2.5),
      e = mf.zeros({ 0, 3 }),
    }
    local has64 = pcall(mf.zeros, { 1 }, { dtype = "f64" })
    if has64 then ts.d = mf.tensor({ 0.1, 1e300 }, { dtype = "f64" }) end
    local path = dir .. "/rt.safetensors"
    mf.io.save_safetensors(path, ts, { who = "spec", n = 3 })
    local l, meta = mf.io.load_safetensors(path)
    assert.are.same({ who = "spec", n = "3" }, meta)
    H.close(l.a:totable(), ts.a:totable(), 0, 0)
    assert.are.same({ 4, 3 }, l.at:shape())
    H.close(l.at:totable(), mf.tensor(a):transpose(1, 2):totable(), 0, 0)
    assert.are.same({ -7, 0, 2147483647 }, l.b:totable())
    assert.are.equal("i32", l.b:dtype())
    assert.are.same({}, l.s:shape())
    assert.are.equal(2.5, l.s:item())
    assert.are.same({ 0, 3 }, l.e:shape())
    if has64 then
      assert.are.equal("f64", l.d:dtype())
      assert.are.same({ 0.1, 1e300 }, l.d:totable())
    end
    -- nothing but the file is left in the directory
    assert.are.same({ "rt.safetensors" }, listdir(dir))
  end)

  it("writes the layout of the format: u64 LE length, space-padded JSON, wide dtypes first", function()
    local path = dir .. "/layout.safetensors"
    mf.io.save_safetensors(path, { w = mf.tensor({ 1, 2 }), i = mf.tensor({ 3 }, { dtype = "i32" }) }, { k = "v" })
    local s = slurp(path)
    local n = string.unpack("<I8", s)
    assert.are.equal(0, n % 8)
    local h = s:sub(9, 8 + n)
    assert.are.equal(
      '{"__metadata__":{"k":"v"},"i":{"data_offsets":[0,4],"dtype":"I32","shape":[1]},' ..
      '"w":{"data_offsets":[4,12],"dtype":"F32","shape":[2]}}', (h:gsub(" +$", "")))
    assert.are.equal(8 + n + 12, #s)
    local i, x, y = string.unpack("<i4ff", s, 9 + n)
    assert.are.same({ 3, 1.0, 2.0 }, { i, x, y })
  end)

  it("reads a hand-made file with F16, BF16, I64, U8 and BOOL tensors", function()
    local header = '{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},' ..
        '"b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]},' ..
        '"l":{"dtype":"I64","shape":[2],"data_offsets":[10,26]},' ..
        '"u":{"dtype":"U8","shape":[2],"data_offsets":[26,28]},' ..
        '"q":{"dtype":"BOOL","shape":[1],"data_offsets":[28,29]},"__metadata__":{"format":"pt"}}'
    -- f16: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800; bf16: 1.0 = 0x3F80, -3.0 = 0xC040
    local data = string.pack("<I2I2I2", 0x3C00, 0xC000, 0x3800) .. string.pack("<I2I2", 0x3F80, 0xC040) ..
        string.pack("<i8i8", -5, (1 << 31) - 1) .. string.char(200, 7) .. string.char(1)
    local path = dir .. "/hand.safetensors"
    spit(path, image(header, data))
    local l, meta = mf.io.load_safetensors(path)
    assert.are.equal("pt", meta.format)
    assert.are.same({ 1.0, -2.0, 0.5 }, l.h:totable())
    assert.are.equal("f32", l.h:dtype())
    assert.are.same({ 1.0, -3.0 }, l.b:totable())
    assert.are.same({ -5, (1 << 31) - 1 }, l.l:totable())
    assert.are.equal("i32", l.l:dtype())
    assert.are.same({ 200, 7 }, l.u:totable())
    assert.are.same({ 1 }, l.q:totable())
  end)

  describe("rejects a bad file with an error naming the file and the tensor", function()
    local path = dir .. "/bad.safetensors"
    local function rejects(s, ...)
      spit(path, s)
      local err = H.errors(function() mf.io.load_safetensors(path) end, "moonflow.io.load_safetensors", path, ...)
      return err
    end
    local ok_entry = '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
    local data8 = string.pack("<ff", 1, 2)

    it("too short for the length prefix", function() rejects("abc", "too short") end)
    it("a length prefix of zero or absurd size", function()
      rejects(string.pack("<I8", 0) .. "{}", "bad header length 0")
      rejects(string.pack("<I8", 1 << 40) .. "{}", "bad header length")
    end)
    it("a header beyond the end of the file", function()
      rejects(string.pack("<I8", 200) .. "{" .. ok_entry .. "}", "beyond the end of the file")
    end)
    it("invalid JSON and non-object headers", function()
      rejects(image("{" .. ok_entry, data8), "not valid JSON")
      rejects(image("[1, 2]", ""), "not a JSON object")
      rejects(image('{"w": 3}', ""), 'tensor "w"', "not an object")
    end)
    it("an unknown dtype", function()
      rejects(image('{"w":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}}', data8), 'tensor "w"', "unknown dtype F128")
      rejects(image('{"w":{"shape":[2],"data_offsets":[0,8]}}', data8), 'tensor "w"', "dtype missing")
    end)
    it("a bad shape", function()
      rejects(image('{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', data8), 'tensor "w"', "size 1 of the shape is -2")
      rejects(image('{"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}', data8), 'tensor "w"', "shape is not an array")
      rejects(image('{"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}', ""), 'tensor "w"', "too many elements")
    end)
    it("offsets out of range", function()
      rejects(image('{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', data8), 'tensor "w"', "out of range")
      rejects(image('{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', data8), 'tensor "w"', "out of range")
      rejects(image('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', data8), 'tensor "w"', "two integers")
    end)
    it("overlapping offsets", function()
      rejects(image('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' ..
        '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data8), 'tensor "b"', "overlap")
    end)
    it("holes and trailing bytes", function()
      rejects(image('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data8), 'tensor "a"', "bytes 0..4", "belong to no tensor")
      rejects(image('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', data8), "bytes 4..8 at the end")
    end)
    it("a byte count that does not match the shape", function()
      rejects(image('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', data8), 'tensor "w"', "8 bytes do not hold shape {3} of F32 (12 bytes)")
      rejects(image('{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}', data8), 'tensor "w"', "(16 bytes)")
    end)
    it("metadata that is not a string map", function()
      rejects(image('{"__metadata__":{"step":3},' .. ok_entry .. "}", data8), '__metadata__ entry "step"')
    end)
    it("a missing file", function()
      H.errors(function() mf.io.load_safetensors(dir .. "/none.safetensors") end, "moonflow.io.load_safetensors",
        "none.safetensors")
    end)
  end)

  it("keeps the old file when a save fails, and leaves no temporary file", function()
    local path = dir .. "/keep.safetensors"
    mf.io.save_safetensors(path, { w = mf.tensor({ 1, 2, 3 }) })
    local before = slurp(path)
    H.errors(function() mf.io.save_safetensors(path, { w = mf.tensor({ 1 }), x = "nope" }) end,
      "moonflow.io.save_safetensors", '"x" is a string, not a tensor')
    H.errors(function() mf.io.save_safetensors(path, { w = mf.tensor({ 1 }) }, { bad = {} }) end,
      "moonflow.io.save_safetensors", "metadata entry bad")
    H.errors(function() mf.io.save_safetensors(path, { __metadata__ = mf.tensor({ 1 }) }) end, "reserved")
    assert.are.equal(before, slurp(path))
    H.errors(function() mf.io.save_safetensors(dir .. "/no/such/dir/x.safetensors", { w = mf.tensor({ 1 }) }) end,
      "moonflow.write_file", "no/such/dir/x.safetensors")
    for _, name in ipairs(listdir(dir)) do assert.is_nil(name:find("%.tmp%.")) end
  end)

  it("survives a writer killed with SIGKILL in the middle of a save", function()
    -- a child process saves a large file in a loop; killing it at any moment
    -- must leave either the old complete file or the new complete one.
    local path = dir .. "/killed.safetensors"
    mf.io.save_safetensors(path, { w = mf.full({ 4 }, 7) })
    local root, build = os.getenv("MOONFLOW_ROOT") or ".", os.getenv("MOONFLOW_BUILD") or "./build"
    local script = ([[
      package.path = %q .. "/lua/?.lua;" .. %q .. "/lua/?/init.lua;" .. package.path
      package.cpath = %q .. "/lua/?.so;" .. package.cpath
      local mf = require "moonflow"
      local big = mf.full({ 4000000 }, 1)
      for i = 1, 1000 do mf.io.save_safetensors(%q, { w = big }, { i = i }) end
    ]]):format(root, root, build, path)
    spit(dir .. "/writer.lua", script)
    -- kill once the first big save has landed, while later ones are in flight
    os.execute(([[lua5.4 %q & pid=$!
      for i in $(seq 300); do [ $(stat -c %%s %q) -gt 1000 ] && break; sleep 0.1; done
      sleep 0.3; kill -9 $pid; wait $pid 2>/dev/null]]):format(dir .. "/writer.lua", path))
    local l, meta = mf.io.load_safetensors(path)
    assert.are.equal(4000000, l.w:numel())
    assert.is_true(tonumber(meta.i) >= 1)
    assert.are.equal(4000000, l.w:sum():item())
  end)
end)
