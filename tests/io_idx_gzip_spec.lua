-- load_idx inflates gzip in a stream bounded by the IDX header: a small
-- file cannot make it allocate more than the header announces, a stream
-- longer or shorter than the header is an error, and bytes after the gzip
-- data are an error (further gzip members are read on, as gzip does).
local mf = require "moonflow"
local H = require "helpers"
local Peak = require "io_peak"

local dir = H.tmpdir()

local spit = H.spit
local slurp = H.slurp

local function idx_head(typ, shape)
  local s = string.char(0, 0, typ, #shape)
  for _, d in ipairs(shape) do s = s .. string.pack(">I4", d) end
  return s
end

-- a gzip file of the chunks (write_file compresses a list of strings)
local function gz(name, chunks)
  local p = dir .. "/" .. name
  mf.core.write_file(p, chunks, true)
  return p
end

describe("io.load_idx over gzip", function()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

  it("reads a stream exactly as long as its header says", function()
    local p = gz("ok.gz", { idx_head(0x08, { 2, 3 }), string.char(0, 51, 102, 153, 204, 255) })
    local t = mf.io.load_idx(p, { scale = false })
    assert.are.same({ { 0, 51, 102 }, { 153, 204, 255 } }, t:totable())
  end)

  it("rejects a stream longer than the header announces (a gzip bomb) without inflating it", function()
    local mb = string.rep("\0", 1 << 20)
    local chunks = { idx_head(0x08, { 16, 16 }), string.rep("\1", 256) }
    for i = 1, 64 do chunks[#chunks + 1] = mb end -- 64 MB of zeros after the data
    local p = gz("bomb.gz", chunks)
    H.errors(function() mf.io.load_idx(p) end, "moonflow.io.load_idx", p, "longer than the 256 data bytes")
  end)

  it("keeps memory bounded by the header: 512 MB of inflated zeros cost no more than a few MB", function()
    local mb = string.rep("\0", 1 << 20)
    local chunks = { idx_head(0x08, { 16, 16 }), string.rep("\1", 256) }
    for i = 1, 512 do chunks[#chunks + 1] = mb end
    local p = gz("bomb512.gz", chunks)
    assert.is_true(#slurp(p) < 2 * 1024 * 1024) -- the whole file is small
    local ok, grew, err = Peak.run(dir, ("return io_.load_idx(%q)"):format(p))
    assert.is_false(ok)
    assert.is_true(grew < 16 * 1024, ("peak memory grew by %d kB: %s"):format(grew, err))
    assert.is_not_nil(err:find("longer than the 256 data bytes", 1, true), err)
  end)

  it("rejects a stream shorter than the header announces", function()
    local p = gz("short.gz", { idx_head(0x08, { 4, 4 }), string.rep("\1", 15) })
    H.errors(function() mf.io.load_idx(p) end, "moonflow.io.load_idx", p, "15 data bytes", "expected 16")
  end)

  it("reads concatenated gzip members as one stream, as gzip does", function()
    local a = slurp(gz("a.gz", { idx_head(0x08, { 2, 2 }), string.char(1, 2) }))
    local b = slurp(gz("b.gz", { string.char(3, 4) }))
    local p = spit(dir .. "/ab.gz", a .. b)
    assert.are.same({ { 1, 2 }, { 3, 4 } }, mf.io.load_idx(p, { scale = false }):totable())
  end)

  it("rejects bytes after the gzip data that are not another member", function()
    local a = slurp(gz("c.gz", { idx_head(0x08, { 2, 2 }), string.char(1, 2, 3, 4) }))
    for _, tail in ipairs { "garbage", "\0\0\0\0", "\31" } do
      local p = spit(dir .. "/tail.gz", a .. tail)
      H.errors(function() mf.io.load_idx(p) end, "moonflow.io.load_idx", p, "after the gzip data")
    end
  end)

  it("rejects a header whose element count overflows, before reading data", function()
    local p = gz("huge.gz", { idx_head(0x0E, { 65536, 65536, 65536 }) })
    H.errors(function() mf.io.load_idx(p) end, "moonflow.io.load_idx", p, "too many elements")
    p = spit(dir .. "/huge.idx", idx_head(0x0E, { 65536, 65536, 65536 }))
    H.errors(function() mf.io.load_idx(p) end, "moonflow.io.load_idx", p, "too many elements")
  end)

  it("read_file refuses bytes after the gzip data too", function()
    local a = slurp(gz("d.gz", { "hello" }))
    local p = spit(dir .. "/d2.gz", a .. "junk")
    H.errors(function() mf.core.read_file(p) end, "moonflow.read_file", p, "after the gzip data")
    assert.are.equal("hellohello", mf.core.read_file(spit(dir .. "/d3.gz", a .. a)))
  end)
end)
