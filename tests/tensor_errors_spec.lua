-- Every misuse is a Lua error that names the function and the values;
-- none of them takes the interpreter down.
local mf = require "moonflow"
local H = require "helpers"

local x = mf.zeros({ 4, 3 })

describe("errors", function()
  it("shape mismatches name both shapes", function()
    H.errors(function() return x + mf.zeros({ 5 }) end, "moonflow.add", "{4, 3}", "{5}", "broadcast")
    H.errors(function() return x:mul(mf.zeros({ 2, 3 })) end, "moonflow.mul", "{4, 3}", "{2, 3}")
    H.errors(function() return mf.where(mf.zeros({ 2 }), x, x) end, "moonflow.where", "{2}", "{4, 3}")
    H.errors(function() return mf.matmul(x, x) end, "moonflow.matmul", "{4, 3}", "do not multiply")
    H.errors(function() return mf.matmul(mf.zeros({ 2, 4, 3 }), mf.zeros({ 3, 3, 2 })) end, "moonflow.matmul",
      "{2, 4, 3}", "{3, 3, 2}")
    H.errors(function() return mf.matmul(x, mf.zeros({ 3 })) end, "moonflow.matmul", "{3}", "2-D")
    H.errors(function() return mf.cat({ x, mf.zeros({ 4, 2, 1 }) }, 2) end, "moonflow.cat", "entry 2", "{4, 2, 1}")
    H.errors(function() return x:reshape { 5, 2 } end, "moonflow.reshape", "{4, 3}", "{5, 2}")
    H.errors(function() return x:expand { 4, 5 } end, "moonflow.expand", "{4, 3}", "{4, 5}")
    H.errors(function() return x:add_(mf.zeros({ 2, 4, 3 })) end, "moonflow.add_", "{4, 3}", "{2, 4, 3}")
    H.errors(function() return x:copy_(mf.zeros({ 2 })) end, "moonflow.copy_", "{2}", "{4, 3}")
    H.errors(function() return x:gather(1, mf.zeros({ 5, 5 }, "i32")) end, "moonflow.gather", "{5, 5}", "{4, 3}")
  end)

  it("dtype mismatches and unsupported dtypes name the dtypes", function()
    local i = mf.zeros({ 4, 3 }, "i32")
    H.errors(function() return x + i end, "moonflow.add", "f32", "i32")
    H.errors(function() return mf.where(x, x, i) end, "moonflow.where", "i32")
    H.errors(function() return mf.matmul(i, i:t()) end, "moonflow.matmul", "i32")
    H.errors(function() return mf.matmul(x, mf.zeros({ 3, 2 }, "f64")) end, "moonflow.matmul", "f32", "f64")
    H.errors(function() return mf.cat({ x, i }, 1) end, "moonflow.cat", "i32", "f32")
    H.errors(function() return i:exp() end, "moonflow.exp", "exp", "i32")
    H.errors(function() return i / i end, "moonflow.div", "i32")
    H.errors(function() return x:index_select(1, mf.zeros({ 2 })) end, "moonflow.index_select", "i32", "f32")
    H.errors(function() return x:to("f16") end, "moonflow.to", "f16")
    H.errors(function() return mf.zeros({ 2 }, { dtype = "float" }) end, "moonflow.zeros", "float")
    H.errors(function() return mf.Generator(0):uniform({ 2 }, { dtype = "i32" }) end, "moonflow.uniform", "f32 or f64")
  end)

  it("numbers that an i32 tensor cannot hold are refused, not truncated", function()
    local i = mf.tensor({ 1, 2, 3 }, "i32")
    H.errors(function() return i + 2.5 end, "moonflow.add", "2.5", "i32")
    H.errors(function() return 0.5 * i end, "moonflow.mul", "0.5")
    H.errors(function() return i:lt(1.5) end, "moonflow.lt", "1.5")
    H.errors(function() return i + 2 ^ 31 end, "moonflow.add", "2147483648")
    H.errors(function() return i:add_(0.5) end, "moonflow.add_", "0.5")
    H.errors(function() return i:fill_(1.5) end, "moonflow.fill_", "1.5")
    H.errors(function() return mf.full({ 2 }, 2.7, "i32") end, "moonflow.full", "2.7")
    H.errors(function() return mf.arange(0, 1, 0.25, "i32") end, "moonflow.arange", "0.25")
    H.errors(function() return mf.where(mf.tensor({ 1, 0, 1 }, "i32"), i, 0.5) end, "0.5", "i32")
    H.errors(function() return i:mean() end, "moonflow.mean", "i32")
    H.errors(function() return i:var() end, "moonflow.mean", "i32")
    assert.same({ 3, 4, 5 }, (i + 2.0):totable()) -- an integral float is fine
  end)

  it("dims out of range name the dim and the tensor's rank", function()
    H.errors(function() return x:sum(3) end, "moonflow.sum", "dim 3", "2 dims")
    H.errors(function() return x:sum(0) end, "moonflow.sum", "dim 0")
    H.errors(function() return x:mean(-3) end, "moonflow.mean", "dim -3")
    H.errors(function() return x:max({ 1, 5 }) end, "moonflow.max", "dim 5")
    H.errors(function() return x:var({ 2, 2 }) end, "moonflow.var", "dim 2 repeated")
    H.errors(function() return x:norm(2.5) end, "moonflow.norm", "dim 2.5")
    H.errors(function() return x:sum("rows") end, "moonflow.sum", "string")
    H.errors(function() return x:narrow(3, 1, 1) end, "moonflow.narrow", "dim 3")
    H.errors(function() return x:narrow(2, 3, 2) end, "moonflow.narrow", "3..4", "1..3")
    H.errors(function() return x:transpose(1, 5) end, "moonflow.transpose", "dim 5")
    H.errors(function() return x:permute { 1, 1 } end, "moonflow.permute", "repeated")
    H.errors(function() return x:permute { 1, 2, 3 } end, "moonflow.permute", "3 dims", "2")
    H.errors(function() return x:unsqueeze(4) end, "moonflow.unsqueeze", "dim 4")
    H.errors(function() return mf.cat({ x, x }, 3) end, "moonflow.cat", "dim 3")
    H.errors(function() return x:index_select(-3, mf.zeros({ 1 }, "i32")) end, "moonflow.index_select", "dim -3")
    H.errors(function() return x:permute { 1, "a" } end, "moonflow.permute", "integer", "got a")
    H.errors(function() return x:narrow("rows", 1, 1) end, "moonflow.narrow", "integer", "rows")
    H.errors(function() return x:narrow(1 << 40, 1, 1) end, "moonflow.narrow", "dim 1099511627776")
    H.errors(function() return mf.cat({ x, x }, 1.5) end, "moonflow.cat", "integer", "1.5")
    H.errors(function() return x:index_select(nil, mf.zeros({ 1 }, "i32")) end, "moonflow.index_select", "nil")
  end)

  it("bad sizes and too many dims", function()
    H.errors(function() return mf.zeros({ 2, -1 }) end, "moonflow.zeros", "size 2", "-1")
    H.errors(function() return mf.ones({ 2.5 }) end, "moonflow.ones", "2.5")
    H.errors(function() return mf.zeros({ 1 << 40 }) end, "moonflow.zeros", "1099511627776")
    H.errors(function() return mf.zeros({ 1 << 16, 1 << 16 }) end, "moonflow.zeros", "{65536, 65536}", "2^31")
    H.errors(function() return mf.zeros({ 1, 1, 1, 1, 1, 1, 1, 1, 1 }) end, "moonflow.zeros", "9 dims")
    H.errors(function() return mf.tensor({ { { { { { { { { 1 } } } } } } } } }) end, "moonflow.tensor", "8")
    H.errors(function() return x:reshape { -1, -1 } end, "moonflow.reshape", "-1")
    H.errors(function() return mf.zeros({ 1 }):expand { 1 << 16, 1 << 16 } end, "moonflow.expand", "{65536, 65536}")
    H.errors(function() return mf.arange(0, 5, 0) end, "moonflow.arange", "step")
  end)

  it("wrong argument types name what was given", function()
    H.errors(function() return mf.zeros("big") end, "moonflow.zeros", "string")
    H.errors(function() return mf.full({ 2 }, "one") end, "moonflow.full", "string")
    H.errors(function() return x + "1" end, "moonflow.add", "tensor", "string")
    H.errors(function() return {} * x end, "moonflow.mul", "table", "tensor")
    H.errors(function() return mf.exp("x") end, "moonflow.exp", "got string")
    H.errors(function() return x.sum(42) end, "moonflow.sum", "got number")
    H.errors(function() return mf.matmul(x, 3) end, "moonflow.matmul", "number")
    H.errors(function() return mf.cat({ x, 3 }) end, "moonflow.cat", "entry 2", "number")
    H.errors(function() return mf.tensor(print) end, "moonflow.tensor", "function")
    H.errors(function() return mf.tensor({ 1, true }) end, "moonflow.tensor", "element 2", "boolean")
    H.errors(function() return x:reshape("flat") end, "moonflow.reshape", "flat")
    H.errors(function() return mf.Generator(1.5) end, "moonflow.Generator", "1.5")
    H.errors(function() return mf.Generator(0):normal("big") end, "moonflow.normal", "string")
    H.errors(function() mf.Generator(0):set_state({ seed = 1 }) end, "set_state", "offset")
    H.errors(function() return mf.linspace(0, 1, 2.5) end, "moonflow.linspace", "2.5")
  end)

  it("item of a non-scalar names the shape", function()
    H.errors(function() return x:item() end, "moonflow.item", "{4, 3}", "12 elements")
    H.errors(function() return mf.zeros({ 0 }):item() end, "moonflow.item", "{0}", "0 elements")
  end)

  it("random ranges: randint empty or outside i32, uniform reversed, negative std", function()
    local g = mf.Generator(0)
    H.errors(function() return g:randint({ 3 }, 5, 5) end, "moonflow.randint", "[5, 5)")
    H.errors(function() return g:randint({ 3 }, 5, 2) end, "moonflow.randint", "[5, 2)")
    H.errors(function() return g:randint({ 3 }, 0, 1 << 40) end, "moonflow.randint", "1099511627776", "i32")
    H.errors(function() return g:randint({ 3 }, 0, 2.5) end, "moonflow.randint", "2.5")
    H.errors(function() return mf.randint({ 3 }, 0) end, "moonflow.randint", "[0, 0)")
    H.errors(function() return g:uniform({ 3 }, { low = 2, high = 1 }) end, "moonflow.uniform", "2.0", "1.0")
    H.errors(function() return g:normal({ 3 }, { std = -1 }) end, "moonflow.normal", "-1.0")
    H.errors(function() return x:clamp(1, 0) end, "moonflow.clamp", "1.0", "0.0")
    assert.equal(0, g:get_state().offset) -- failed draws consume nothing
  end)

  it("device out of memory is an error, and the device keeps working", function()
    local dev = mf.device()
    if dev.max_alloc >= 16 * 2 ^ 30 then
      pending("the device allows a 16 GiB buffer: the largest tensor cannot exhaust it")
      return
    end
    mf.synchronize()
    local before = mf.memory().in_use
    H.errors(function() return mf.empty({ (1 << 31) - 1 }, "f64") end, "moonflow.empty", "out of memory",
      "17179869176")
    H.errors(function() return mf.zeros({ (1 << 31) - 1, 1 }, { dtype = "f64" }) end, "moonflow.zeros", "out of memory")
    assert.equal(before, mf.memory().in_use)
    assert.equal(6, (mf.ones({ 3 }) * 2):sum():item())
  end)

  it("f64 on a device without it (MOONFLOW_DISABLE_FP64=1 in a child) is a clear error", function()
    local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
    local code = table.concat({
      ("package.path = %q; package.cpath = %q"):format(package.path, package.cpath),
      "local mf = require 'moonflow'",
      "print('fp64', tostring(mf.device().fp64))",
      "for _, f in ipairs {",
      "  function() return mf.zeros({2}, {dtype = 'f64'}) end,",
      "  function() return mf.tensor({1, 2}, 'f64') end,",
      "  function() return mf.ones({2}):to('f64') end,",
      "  function() return mf.randn({4}, {dtype = 'f64'}) end,",
      "} do local ok, e = pcall(f); print(ok, e) end",
      "print('alive', (mf.ones({3}) * 2):sum():item())",
    }, "\n")
    local env = "MOONFLOW_DEVICE=" .. sh_quote(os.getenv("MOONFLOW_DEVICE") or "") .. " MOONFLOW_DISABLE_FP64=1"
    local p = io.popen(env .. " lua5.4 -e " .. sh_quote(code) .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.truthy(out:find("fp64\tfalse", 1, true), out)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    local names = { "moonflow.zeros", "moonflow.tensor", "moonflow.to", "moonflow.normal" }
    for i, name in ipairs(names) do
      local l = lines[i + 1] or ""
      assert.truthy(l:find("^false\t"), l)
      for _, frag in ipairs { name, "f64", "cl_khr_fp64" } do
        assert.truthy(l:find(frag, 1, true), ("%q lacks %q"):format(l, frag))
      end
      if mf.device().fp64_hardware then
        assert.truthy(l:find("MOONFLOW_DISABLE_FP64", 1, true), l)
      end
    end
    assert.truthy(out:find("alive\t6", 1, true), out)
  end)

  it("none of the above hurt the interpreter or the device", function()
    local y = mf.tensor({ { 1, 2 }, { 3, 4 } })
    assert.same({ { 7, 10 }, { 15, 22 } }, mf.matmul(y, y):totable())
    assert.equal(10, y:sum():item())
  end)
end)
