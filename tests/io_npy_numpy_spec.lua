-- load_npy / load_npz / save_npy against files written by real numpy
-- (tests/fixtures/make_npy_fixtures.py made them; the values are restated here).
local mf = require "moonflow"
local H = require "helpers"
local Peak = require "io_peak"

local root = os.getenv("MOONFLOW_ROOT") or "."
local function fx(name) return root .. "/tests/fixtures/npy/" .. name end
local dir = H.tmpdir()
teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

local function bits64(t)
  local s, out = mf.core.tobytes(t), {}
  for i = 1, #s, 8 do out[#out + 1] = ("%016x"):format(string.unpack("<i8", s, i)) end
  return out
end

describe("io.load_npy on numpy's files", function()
  it("keeps f64 as f64, -0.0, values beyond f32 and denormals included", function()
    local t = mf.io.load_npy(fx("f64.npy"))
    assert.are.equal("f64", t:dtype())
    assert.are.same({ 2, 3 }, t:shape())
    assert.are.same({ { 1.5, -0.0, 1e300 }, { math.huge, -2.25, 5e-324 } }, t:totable())
    assert.are.equal("8000000000000000", bits64(t)[2])
    assert.are.equal("0000000000000001", bits64(t)[6])
    -- asked for f32, a value beyond its range is an error naming it
    H.errors(function() mf.io.load_npy(fx("f64.npy"), { dtype = "f32" }) end,
      "moonflow.io.load_npy", "f64.npy", "element 3", "1e+300", "overflows f32")
  end)

  it("reads int64 as i32, and names an element out of the i32 range", function()
    local t = mf.io.load_npy(fx("i64.npy"))
    assert.are.equal("i32", t:dtype())
    assert.are.same({ 0, -5, 2147483647, -2147483648 }, t:totable())
    H.errors(function() mf.io.load_npy(fx("i64_big.npy")) end,
      "moonflow.io.load_npy", "i64_big.npy", "element 3 (3000000000)", "i32 range")
  end)

  it("reads Fortran-order arrays (np.save(f, a.T)) with their shape, in C order", function()
    local t = mf.io.load_npy(fx("fortran_f4.npy"))
    assert.are.equal("f32", t:dtype())
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, t:totable())
    assert.is_true(t:is_contiguous())
    local u = mf.io.load_npy(fx("fortran_i4_3d.npy"))
    assert.are.same({ 2, 3, 4 }, u:shape())
    local flat = u:reshape({ 24 }):totable()
    for i = 1, 24 do assert.are.equal(i - 1, flat[i]) end -- np.arange(24).reshape(2, 3, 4)
  end)

  it("reads big-endian arrays, Fortran order too", function()
    local f = mf.io.load_npy(fx("be_f4.npy"))
    assert.are.same({ 1, -0.0, 0.5, -3 }, f:totable())
    assert.are.equal(-math.huge, 1 / f:totable()[2]) -- the sign of -0.0 survives
    assert.are.same({ { -1, 2 }, { 70000, -3 } }, mf.io.load_npy(fx("be_i8.npy")):totable())
    local d = mf.io.load_npy(fx("be_f8_fortran.npy"))
    assert.are.equal("f64", d:dtype())
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, d:totable())
  end)

  it("points a .npz to load_npz", function()
    H.errors(function() mf.io.load_npy(fx("stored.npz")) end, "moonflow.io.load_npy", "stored.npz", "load_npz")
  end)
end)

describe("io.load_npz", function()
  it("reads np.savez (stored) and np.savez_compressed (deflated) archives by name", function()
    for _, name in ipairs { "stored.npz", "deflated.npz" } do
      local z = mf.io.load_npz(fx(name))
      local keys = {}
      for k in pairs(z) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.are.same({ "x", "y" }, keys, name)
      assert.are.equal("f32", z.x:dtype())
      assert.are.same({ { 0.25, -1 }, { 2, 8 } }, z.x:totable(), name)
      assert.are.equal("i32", z.y:dtype())
      assert.are.same({ 3, 1, 4, 1, 5 }, z.y:totable(), name)
    end
    local z = mf.io.load_npz(fx("deflated.npz"), { dtype = "f64" })
    assert.are.equal("f64", z.y:dtype())
  end)

  it("bounds a zip bomb by the member's npy header", function()
    -- 16 announced data bytes followed by 64 MiB of zeros
    local ok, grew, err = Peak.run(dir, ("io_.load_npz(%q)"):format(fx("bomb.npz")))
    assert.is_false(ok)
    assert.truthy(err:find("moonflow.io.load_npz", 1, true), err)
    assert.truthy(err:find("bomb.npz:a.npy", 1, true), err)
    assert.truthy(err:find("runs past the 16 data bytes its header announces", 1, true), err)
    assert.is_true(grew < 16 * 1024, ("peak memory grew by %d kB"):format(grew))
  end)

  it("rejects what is not a zip archive, naming the file", function()
    H.errors(function() mf.io.load_npz(fx("f64.npy")) end, "moonflow.io.load_npz", "f64.npy", "zip")
    H.errors(function() mf.io.load_npz(dir .. "/none.npz") end, "moonflow.io.load_npz", "none.npz")
    local cut = H.slurp(fx("deflated.npz"))
    H.errors(function() mf.io.load_npz(H.spit(dir .. "/cut.npz", cut:sub(1, #cut - 30))) end,
      "moonflow.io.load_npz", "cut.npz")
  end)
end)

describe("io.save_npy", function()
  it("writes what numpy.save writes, byte for byte", function()
    -- the header of np.save(f, np.zeros((2, 3), '<f4')): 118 bytes padded to 128
    local p = mf.io.save_npy(dir .. "/z.npy", mf.zeros({ 2, 3 }))
    local s = H.slurp(p)
    local dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    assert.are.equal("\x93NUMPY\1\0" .. string.pack("<I2", 118) .. dict .. (" "):rep(118 - #dict - 1) .. "\n"
      .. ("\0"):rep(24), s)
  end)

  it("round trips f32, f64 and i32 with shapes {}, {n} and {a, b, c}", function()
    local cases = {
      { mf.tensor({ { { 1.5, -0.0 }, { 3, 4 } } }), "<f4", { 1, 2, 2 } },
      { mf.tensor({ 0.1, -1e300, 5e-324 }, { dtype = "f64" }), "<f8", { 3 } },
      { mf.tensor({ 7, -2147483648, 2147483647 }, { dtype = "i32" }), "<i4", { 3 } },
      { mf.full({}, 2.5), "<f4", {} },
    }
    for i, c in ipairs(cases) do
      local p = mf.io.save_npy(dir .. "/r" .. i .. ".npy", c[1])
      assert.truthy(H.slurp(p):find("'descr': '" .. c[2] .. "'", 1, true))
      local back = mf.io.load_npy(p)
      assert.are.equal(c[1]:dtype(), back:dtype())
      assert.are.same(c[3], back:shape())
      assert.are.equal(mf.core.tobytes(c[1]), mf.core.tobytes(back))
    end
    local s = H.slurp(dir .. "/r4.npy")
    assert.truthy(s:find("'shape': (), }", 1, true))
    assert.truthy(H.slurp(dir .. "/r2.npy"):find("'shape': (3,), }", 1, true))
    -- a view is written in its own (C) order
    local v = mf.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }):permute({ 2, 1 })
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, mf.io.load_npy(mf.io.save_npy(dir .. "/v.npy", v)):totable())
    H.errors(function() mf.io.save_npy(dir .. "/x.npy", {}) end, "moonflow.io.save_npy", "tensor")
  end)
end)
