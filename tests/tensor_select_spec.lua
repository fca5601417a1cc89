-- t[i], t[{i, j}] and t:select(dim, i): views, 1-based, negative from the
-- end; a result with no dims left is a Lua number (Torch7).
local mf = require "moonflow"
local errors = require("helpers").errors

describe("tensor indexing", function()
  -- t[i][j] = 10 i + j
  local function grid()
    return mf.tensor { { 11, 12, 13, 14 }, { 21, 22, 23, 24 }, { 31, 32, 33, 34 } }
  end

  it("t[i] of a 2-D tensor is row i, of a 1-D tensor a number", function()
    local t = grid()
    assert.same({ 21, 22, 23, 24 }, t[2]:totable())
    assert.same({ 4 }, t[2]:shape())
    assert.equal(23, t[2][3])
    assert.equal("number", type(t[2][3]))
    assert.same({ 31, 32, 33, 34 }, t[-1]:totable())
    assert.equal(14, t[1][-1])
  end)

  it("t[{i, j}] selects dims 1 and 2", function()
    local t = grid()
    assert.equal(32, t[{ 3, 2 }])
    assert.same({ 11, 12, 13, 14 }, t[{ 1 }]:totable())
    local c = mf.arange(24):reshape { 2, 3, 4 }
    assert.same({ 20, 21, 22, 23 }, c[{ 2, 3 }]:totable()) -- 12 (2-1) + 4 (3-1) + 0..3
  end)

  it("select(dim, i) slices any dim as a view of the same storage", function()
    local t = grid()
    local col = t:select(2, 3)
    assert.same({ 13, 23, 33 }, col:totable())
    assert.same({ 3 }, col:shape())
    assert.same({ 4 }, col:strides())
    assert.equal(2, col:storage_offset())
    col:fill_(0)
    assert.same({ { 11, 12, 0, 14 }, { 21, 22, 0, 24 }, { 31, 32, 0, 34 } }, t:totable())
    local row = t[2]
    row:mul_(2)
    assert.same({ 42, 44, 0, 48 }, t[2]:totable())
    assert.same({}, mf.tensor { 5, 6 }:select(1, 2):shape())
  end)

  it("select is differentiable when autograd records it", function()
    local w = mf.tensor { { 1, 2, 3 }, { 4, 5, 6 } }:requires_grad()
    local y = (w:select(2, -1) * mf.tensor { 10, 100 }):sum()
    y:backward()
    assert.same({ { 0, 0, 10 }, { 0, 0, 100 } }, w.grad:totable())
    assert.equal(3 * 10 + 6 * 100, y:item())
  end)

  it("bad indices are errors naming the dim and size", function()
    local t = grid()
    errors(function() return t[4] end, "moonflow.select", "index 4", "dim 1 of size 3")
    errors(function() return t[0] end, "index 0")
    errors(function() return t[{ 1, 5 }] end, "index 5", "size 4")
    errors(function() return t[{ 1, 1, 1 }] end, "moonflow.index", "3 indices", "2 dims")
    errors(function() return t:select(3, 1) end, "dim 3 out of range")
    errors(function() return t[1.5] end, "must be an integer")
    errors(function() return mf.tensor(3):select(1, 1) end, "0-d tensor")
  end)

  it("leaves methods and fields as they were", function()
    local t = grid()
    assert.equal(12, t:numel())
    t.tag = "x"
    assert.equal("x", t.tag)
    assert.is_nil(t.nothing)
  end)
end)
