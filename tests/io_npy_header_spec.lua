-- The npy header is the Python dict literal numpy writes, parsed as such:
-- either quote, True/False, ints, tuples, a duplicate key's last value
-- (as Python's dict literal), exactly the keys numpy's reader accepts.
local mf = require "moonflow"
local H = require "helpers"
local Peak = require "io_peak"

local dir = H.tmpdir()

-- an npy v1.0 file whose header is the given text, padded as numpy pads it
local function npy(dict, data)
  local total = math.ceil((10 + #dict + 1) / 64) * 64
  dict = dict .. (" "):rep(total - 10 - #dict - 1) .. "\n"
  return "\x93NUMPY\1\0" .. string.pack("<I2", #dict) .. dict .. data
end

local n = 0
local function file(dict, data)
  n = n + 1
  local p = ("%s/h%d.npy"):format(dir, n)
  local f = assert(io.open(p, "wb"))
  f:write(npy(dict, data))
  f:close()
  return p
end

local function floats(...)
  local out = {}
  for i, v in ipairs { ... } do out[i] = string.pack("<f", v) end
  return table.concat(out)
end

describe("io.load_npy headers", function()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

  it("takes the last of duplicate keys, as numpy does", function()
    local p = file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (3,), }", floats(1, 2, 3))
    local t = mf.io.load_npy(p)
    assert.are.same({ 3 }, t:shape())
    assert.are.same({ 1, 2, 3 }, t:totable())
    p = file("{'descr': '<i4', 'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), 'fortran_order': False}",
      floats(0.5, -4))
    assert.are.same({ { 0.5, -4 } }, mf.io.load_npy(p):totable())
  end)

  it("reads double quotes, spacing, () and trailing commas", function()
    local p = file('{"descr":"<f4","fortran_order":False,"shape":( 2 , 1 , )}', floats(7, 8))
    assert.are.same({ { 7 }, { 8 } }, mf.io.load_npy(p):totable())
    p = file("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", floats(2.5))
    local s = mf.io.load_npy(p)
    assert.are.same({}, s:shape())
    assert.are.equal(2.5, s:item())
    p = file("{'shape': (0,), 'fortran_order': False, 'descr': '<f4'}", "")
    assert.are.same({ 0 }, mf.io.load_npy(p):shape())
  end)

  it("refuses structured dtypes by name", function()
    local p = file("{'descr': [('a', '<f4'), ('b', '<i4', (2,))], 'fortran_order': False, 'shape': (1,), }",
      floats(1, 2, 3))
    H.errors(function() mf.io.load_npy(p) end, "moonflow.io.load_npy", p, "structured dtypes are not supported")
  end)

  it("rejects keys numpy does not write and keys it needs, as numpy's reader does", function()
    local p = file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", floats(1))
    H.errors(function() mf.io.load_npy(p) end, "moonflow.io.load_npy", p, "unexpected key 'extra'")
    p = file("{'descr': '<f4', 'shape': (1,)}", floats(1))
    H.errors(function() mf.io.load_npy(p) end, "moonflow.io.load_npy", p, "lacks 'fortran_order'")
  end)

  it("refuses a file whose size disagrees with its header before reading the data", function()
    local p = dir .. "/big.npy"
    local f = assert(io.open(p, "wb"))
    f:write(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", ""))
    f:seek("set", 512 * 1024 * 1024 - 1) -- a sparse 512 MB file
    f:write("\0")
    f:close()
    local ok, grew, err = Peak.run(dir, ("return io_.load_npy(%q)"):format(p))
    assert.is_false(ok)
    assert.is_not_nil(err:find("expected 8", 1, true), err)
    assert.is_true(grew < 16 * 1024, ("peak memory grew by %d kB"):format(grew))
  end)

  it("rejects values of the wrong type and text that is not a dict literal", function()
    local cases = {
      { "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", "fortran_order must be True or False" },
      { "{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "shape must be a tuple" },
      { "{'descr': '<f4', 'fortran_order': False, 'shape': (1.0,)}", "shape" },
      { "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "shape" },
      { "{'descr': '<f4', 'fortran_order': False, 'shape': ('1',)}", "shape" },
      { "{'descr': 4, 'fortran_order': False, 'shape': (1,)}", "descr" },
      { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "header" },
      { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", "header" },
      { "{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}", "header" },
      { "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", "header" },
      { "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", "header" },
      { "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (1,)}", "header" },
      { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': " .. ("("):rep(30000) .. "}", "nested" },
      { "['descr', '<f4']", "header" },
    }
    for _, c in ipairs(cases) do
      local p = file(c[1], floats(1))
      H.errors(function() mf.io.load_npy(p) end, "moonflow.io.load_npy", p, c[2])
    end
  end)

  it("refuses f64 values that overflow the f32 asked for, and keeps inf and nan", function()
    local p = file("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", string.pack("<d<d<d", 1, 1e300, 2))
    H.errors(function() mf.io.load_npy(p, { dtype = "f32" }) end, "moonflow.io.load_npy", p, "element 2", "1e+300", "f32")
    assert.are.same({ 1, 1e300, 2 }, mf.io.load_npy(p):totable())
    p = file("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", string.pack("<d<d<d", math.huge, -math.huge, 0 / 0))
    local t = mf.io.load_npy(p, { dtype = "f32" }):totable()
    assert.are.equal(math.huge, t[1])
    assert.are.equal(-math.huge, t[2])
    assert.is_true(t[3] ~= t[3])
  end)
end)
