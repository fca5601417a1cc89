-- Out-of-range indices (negative ones too) in index_select, gather and their
-- vjps are errors. The kernels flag the first bad index on the device; the
-- next host read (item, totable, tobytes, save) raises an error naming the
-- op, the index, where it was and the valid range, then clears the flag.
local mf = require "moonflow"
local core = require "moonflow.core"
local H = require "helpers"

local function i32(t) return mf.tensor(t, "i32") end
local rows = mf.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }) -- 3 rows: valid indices 0..2

local function still_works()
  -- after a reported error the device and the flag are clean again
  assert.same({ { 5, 6 }, { 1, 2 } }, rows:index_select(1, i32 { 2, 0 }):totable())
  assert.same({ { 3, 2 } }, rows:gather(1, i32 { { 1, 0 } }):totable())
end

describe("index errors", function()
  it("index_select past the end raises at the next read, naming op, index, position and range", function()
    local y = rows:index_select(1, i32 { 0, 3 })
    H.errors(function() return y:totable() end, "moonflow.totable", "index_select", "index 3", "position 2",
      "[0, 2]", "dim 1")
    still_works()
  end)

  it("negative indices are errors too", function()
    local y = rows:index_select(2, i32 { -1 })
    H.errors(function() return y:sum():item() end, "moonflow.item", "index_select", "index -1", "[0, 1]", "dim 2")
    still_works()
  end)

  it("the error surfaces at any later read, even of another tensor", function()
    local _ = rows:index_select(1, i32 { 7 })
    H.errors(function() return mf.ones({ 2 }):totable() end, "index_select", "index 7", "[0, 2]")
    assert.same({ 1, 1 }, mf.ones({ 2 }):totable())
    local _ = rows:gather(1, i32 { { 0, 9 } })
    H.errors(mf.synchronize, "moonflow.synchronize", "gather", "index 9", "[0, 2]")
    mf.synchronize()
  end)

  it("gather flags an index outside the gathered dim", function()
    local y = rows:gather(2, i32 { { 0 }, { 2 }, { 1 } })
    H.errors(function() return y:tobytes() end, "moonflow.tobytes", "gather", "index 2", "position 2", "[0, 1]",
      "dim 2")
    local z = rows:gather(1, i32 { { -3, 0 } })
    H.errors(function() return z:totable() end, "gather", "index -3", "position 1", "[0, 2]", "dim 1")
    still_works()
  end)

  it("the vjps (index_add, scatter_add) flag bad indices as well", function()
    local g = mf.ones({ 2, 2 })
    local a = core.index_add(g, 1, i32 { 1, 4 }, 3)
    H.errors(function() return a:totable() end, "index_add", "index 4", "position 2", "[0, 2]", "dim 1")
    local s = core.scatter_add(rows, 2, i32 { { 0, 5 } }, mf.ones({ 1, 2 }))
    H.errors(function() return s:totable() end, "scatter_add", "index 5", "[0, 1]", "dim 2")
    still_works()
  end)

  it("an Embedding with a label past its table fails the training step's read", function()
    local emb = mf.nn.Embedding(4, 2, { seed = 1 })
    local out = emb(i32 { 0, 4 })
    H.errors(function() return out:sum():item() end, "index_select", "index 4", "[0, 3]")
    -- in range: exact rows of the weight
    local w = emb.weight:totable()
    assert.same({ w[4], w[1] }, emb(i32 { 3, 0 }):totable())
  end)

  it("in-range results are exact and a good read after an error is unaffected", function()
    local x = mf.arange(12):reshape { 3, 4 }
    assert.same({ { 8, 9, 10, 11 }, { 0, 1, 2, 3 }, { 8, 9, 10, 11 } }, x:index_select(1, i32 { 2, 0, 2 }):totable())
    assert.same({ { 3, 0 }, { 5, 6 } }, x:narrow(1, 1, 2):gather(2, i32 { { 3, 0 }, { 1, 2 } }):totable())
    local g = core.index_add(mf.ones({ 3, 1 }), 1, i32 { 1, 1, 0 }, 2)
    assert.same({ { 1 }, { 2 } }, g:totable())
  end)
end)
