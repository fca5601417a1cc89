-- safetensors loading as strict as the reference implementation: the header
-- starts with '{', is valid UTF-8, and a file is judged by its header
-- before its data is read.
local mf = require "moonflow"
local H = require "helpers"
local Peak = require "io_peak"

local dir = H.tmpdir()

local spit = H.spit

local function image(header, data) return string.pack("<I8", #header) .. header .. (data or "") end

-- a sparse file: the given head, then zeros up to `size` bytes
local function sparse(path, head, size)
  local f = assert(io.open(path, "wb"))
  f:write(head)
  f:seek("set", size - 1)
  f:write("\0")
  f:close()
  return path
end

describe("io.load_safetensors, strictly", function()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)
  local path = dir .. "/x.safetensors"
  local data8 = string.pack("<ff", 1, 2)
  local entry = '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'

  it("requires the header to start with '{'", function()
    spit(path, image(" {" .. entry .. "}", data8))
    H.errors(function() mf.io.load_safetensors(path) end, "moonflow.io.load_safetensors", path, "start with '{'")
    spit(path, image("{" .. entry .. "}   ", data8)) -- trailing padding is the format's
    assert.are.same({ 1, 2 }, mf.io.load_safetensors(path).w:totable())
  end)

  it("rejects invalid UTF-8 and lone surrogates in names and metadata", function()
    for _, h in ipairs {
      '{"w\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      '{"__metadata__":{"k":"\xc0\xaf"},' .. entry .. "}",
      '{"__metadata__":{"k":"\\udc00"},' .. entry .. "}",
    } do
      spit(path, image(h, data8))
      H.errors(function() mf.io.load_safetensors(path) end, "moonflow.io.load_safetensors", path, "not valid JSON")
    end
  end)

  it("names the file even when a shape holds non-numbers after an oversized size", function()
    spit(path, image('{"w":{"dtype":"F32","shape":[4294967296,{},"x"],"data_offsets":[0,0]}}', ""))
    H.errors(function() mf.io.load_safetensors(path) end, "moonflow.io.load_safetensors", path, 'tensor "w"')
  end)

  it("rejects duplicate tensor names", function()
    spit(path, image("{" .. entry .. "," .. entry .. "}", data8 .. data8))
    H.errors(function() mf.io.load_safetensors(path) end, path, "duplicate key")
  end)

  it("judges a huge file by its header without reading its data", function()
    local big = 512 * 1024 * 1024
    local cases = {
      -- an absurd header length
      { "absurd.safetensors", string.pack("<I8", 1 << 40) .. "{}", "bad header length" },
      -- a header within the cap but beyond the file
      { "beyond.safetensors", string.pack("<I8", 90 * 1024 * 1024) .. "{}", "header of" },
      -- a small valid header, then far more data than its tensors cover
      { "tail.safetensors", image("{" .. entry .. "}", data8), "belong to no tensor" },
    }
    for _, c in ipairs(cases) do
      local size = c[1] == "beyond.safetensors" and 1024 * 1024 or big
      local p = sparse(dir .. "/" .. c[1], c[2], size)
      local ok, grew, err = Peak.run(dir, ("return io_.load_safetensors(%q)"):format(p))
      assert.is_false(ok)
      assert.is_not_nil(err:find(c[3], 1, true), err)
      assert.is_true(grew < 16 * 1024, ("%s: peak memory grew by %d kB"):format(c[1], grew))
    end
  end)
end)
