-- Sizes never overflow and views never reach outside their storage: the
-- kernels index with ints, so a tensor holds fewer than 2^31 elements and
-- every shape whose non-zero sizes multiply past 2^31 - 1 is refused.
-- Cases that crashed the interpreter before the checks run in a child.
local mf = require "moonflow"
local H = require "helpers"

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- runs Lua `body` in a fresh interpreter with moonflow loaded; returns its
-- output and whether it exited cleanly (a crash is a failure, not a hang)
local function child(body)
  local code = ("package.path = %q; package.cpath = %q\nlocal mf = require 'moonflow'\n%s"):format(
    package.path, package.cpath, body)
  local p = io.popen("lua5.4 -e " .. sh_quote(code) .. " 2>&1")
  local out = p:read("a")
  local ok, how, status = p:close()
  return out, ok, how, status
end

local BIG = 65536 -- 65536^4 = 2^64 wraps to 0 in int64 arithmetic

describe("size overflow", function()
  it("reshape refuses sizes whose product wraps past 2^64 (was a 65,536-element view of 256 bytes)", function()
    local out, ok = child([[
      local okr, err = pcall(function() return mf.zeros({ 0 }):reshape { 65536, 65536, 65536, 65536 } end)
      if okr then -- before the fix: narrow it to a large view and write through it
        local v = err:narrow(1, 1, 1):narrow(2, 1, 1):narrow(3, 1, 1)
        print("view of", v:numel(), "elements")
        v:fill_(1)
        print("sum", v:sum():item())
      else
        print(err)
      end
    ]])
    assert.is_true(ok, "child crashed:\n" .. out)
    assert.truthy(out:find("moonflow.reshape", 1, true), out)
    assert.truthy(out:find("{65536, 65536, 65536, 65536}", 1, true), out)
    assert.truthy(out:find("2^31", 1, true), out)
  end)

  it("reshape with -1 checks the product of the known sizes", function()
    local z = mf.zeros({ 0 })
    H.errors(function() return z:reshape { -1, BIG, BIG, BIG, BIG } end, "moonflow.reshape", "2^31")
    H.errors(function() return z:reshape { 0, 1 << 30, 4 } end, "moonflow.reshape", "{0, 1073741824, 4}", "2^31")
    -- a legal empty reshape still works, with exact metadata
    local e = z:reshape { 3, 0, -1 }
    assert.same({ 3, 0, 0 }, e:shape()) -- the -1 of an empty tensor takes 0
    assert.equal(0, e:numel())
    local x = mf.arange(6):reshape { -1, 3 }
    assert.same({ { 0, 1, 2 }, { 3, 4, 5 } }, x:totable())
  end)

  it("creation names the function and the shape", function()
    H.errors(function() return mf.zeros({ BIG, BIG }) end, "moonflow.zeros", "{65536, 65536}", "2^31")
    H.errors(function() return mf.empty({ 0, BIG, BIG }) end, "moonflow.empty", "{0, 65536, 65536}", "2^31")
    H.errors(function() return mf.from_bytes("", { BIG, BIG, BIG, BIG }, "f32") end, "moonflow.from_bytes",
      "{65536, 65536, 65536, 65536}", "2^31")
    assert.same({ 0, 5 }, mf.zeros({ 0, 5 }):shape())
  end)

  it("a nested table whose sizes wrap past 2^64 is refused before any host buffer is made", function()
    -- 4 levels of 65,536 references to one row: 2^64 elements by its shape
    local out, ok = child([[
      local row = {}
      for i = 1, 65536 do row[i] = 0 end
      local t = row
      for _ = 1, 3 do local up = {}; for i = 1, 65536 do up[i] = t end; t = up end
      local okt, err = pcall(mf.tensor, t)
      print(okt and "no error" or err)
    ]])
    assert.is_true(ok, "child crashed:\n" .. out)
    assert.truthy(out:find("moonflow.tensor", 1, true), out)
    assert.truthy(out:find("{65536, 65536, 65536, 65536}", 1, true), out)
  end)

  it("outputs of expand, broadcasting, cat and matmul past 2^31 - 1 elements are refused by name", function()
    local e = mf.zeros({ 1 }):expand { 1 << 30 } -- a view: no memory
    assert.equal(1 << 30, e:numel())
    H.errors(function() return mf.cat({ e, e }, 1) end, "moonflow.cat", "{2147483648}", "2^31")
    H.errors(function() return mf.zeros({ BIG, 1 }) + mf.zeros({ 1, BIG }) end, "moonflow.add", "{65536, 65536}",
      "2^31")
    H.errors(function() return mf.matmul(mf.zeros({ BIG, 1 }), mf.zeros({ 1, BIG })) end, "moonflow.matmul",
      "{65536, 65536}", "2^31")
    H.errors(function() return mf.zeros({ 1 }):expand { BIG, BIG } end, "moonflow.expand", "{65536, 65536}")
  end)
end)

describe("views stay inside their storage", function()
  it("narrow, permute, expand and reshape of views keep the largest offset below the storage size", function()
    local x = mf.arange(24):reshape { 2, 3, 4 }
    local v = x:permute { 3, 1, 2 }:narrow(1, 2, 3):narrow(3, 3, 1) -- {3, 2, 1}
    assert.same({ 3, 2, 1 }, v:shape())
    -- v[i][j][1] = x[j][3][i + 1] = 12 (j - 1) + 8 + i
    assert.same({ { { 9 }, { 21 } }, { { 10 }, { 22 } }, { { 11 }, { 23 } } }, v:totable())
    local w = v:reshape { 6 } -- not contiguous: a packed copy
    assert.same({ 9, 21, 10, 22, 11, 23 }, w:totable())
    H.errors(function() return x:narrow(3, 4, 2) end, "moonflow.narrow", "4..5", "1..4")
    H.errors(function() return x:narrow(1, 0, 1) end, "moonflow.narrow")
    -- start - 1 + length used to wrap negative and pass the check
    H.errors(function() return x:narrow(1, 2, math.maxinteger) end, "moonflow.narrow", "out of range 1..2")
  end)
end)
