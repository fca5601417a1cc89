-- cl/index.cl on oclgrind: index_select, gather and their backward kernels
-- (index_add, scatter_add), repeated indices accumulating. Indices are 0-based.
local mf = require "moonflow"
local H = require "helpers"

describe("index kernels on the GPU shapes", function()
  it("index_select rows and columns, and index_add in its backward", function()
    local x = H.rand_table({ 40, 6 }, 1)
    local ids = {}
    for i = 1, 70 do ids[i] = (i * 13) % 40 end
    local X = mf.tensor(x, { dtype = "f64" }):requires_grad()
    local y = X:index_select(1, mf.tensor(ids, { dtype = "i32" }))
    local want = {}
    for i, r in ipairs(ids) do want[i] = x[r + 1] end
    H.close(y:totable(), want, 0, 0, "index_select")
    local w = H.rand_table({ 70, 6 }, 2)
    local loss = (y * mf.tensor(w, { dtype = "f64" })):sum()
    loss:backward()
    local g = {}
    for r = 1, 40 do g[r] = { 0, 0, 0, 0, 0, 0 } end
    for i, r in ipairs(ids) do
      for j = 1, 6 do g[r + 1][j] = g[r + 1][j] + w[i][j] end
    end
    H.close(X.grad:totable(), g, 1e-12, 1e-12, "index_add")
    local c = mf.tensor(x):index_select(2, mf.tensor({ 5, 0, 5 }, { dtype = "i32" })):totable()
    for i = 1, 40 do H.close(c[i], { x[i][6], x[i][1], x[i][6] }, 1e-7, 1e-7) end
  end)

  it("gather along dim 2 and scatter_add in its backward", function()
    local x = H.rand_table({ 30, 5 }, 3)
    local gi = {}
    for i = 1, 30 do gi[i] = { (i * 3) % 5, (i * 7) % 5, i % 5 } end
    local X = mf.tensor(x, { dtype = "f64" }):requires_grad()
    local y = X:gather(2, mf.tensor(gi, { dtype = "i32" }))
    local want, g = {}, {}
    for i = 1, 30 do
      want[i], g[i] = {}, { 0, 0, 0, 0, 0 }
      for j = 1, 3 do
        want[i][j] = x[i][gi[i][j] + 1]
        g[i][gi[i][j] + 1] = g[i][gi[i][j] + 1] + j
      end
    end
    H.close(y:totable(), want, 0, 0, "gather")
    local w = {}
    for i = 1, 30 do w[i] = { 1, 2, 3 } end
    local loss = (y * mf.tensor(w, { dtype = "f64" })):sum()
    loss:backward()
    H.close(X.grad:totable(), g, 0, 0, "scatter_add")
  end)

  for _, dt in ipairs { "f32", "i32" } do
    it("index_select, gather, index_add and scatter_add in " .. dt, function()
      local x = {}
      for i = 1, 12 do x[i] = { i, -i, 2 * i } end
      local X = mf.tensor(x, { dtype = dt })
      local ids = mf.tensor({ 11, 0, 11, 5 }, { dtype = "i32" })
      assert.same({ x[12], x[1], x[12], x[6] }, X:index_select(1, ids):totable())
      local gi = {}
      for i = 1, 12 do gi[i] = { 2, 0 } end
      local want = {}
      for i = 1, 12 do want[i] = { 2 * i, i } end
      assert.same(want, X:gather(2, mf.tensor(gi, { dtype = "i32" })):totable())
      if dt == "f32" then
        local Xg = mf.tensor(x):requires_grad()
        local l1 = Xg:index_select(1, ids):sum() + Xg:gather(2, mf.tensor(gi, { dtype = "i32" })):sum()
        l1:backward()
        local g = Xg.grad:totable()
        assert.same({ 3, 2, 3 }, g[12])
        assert.same({ 2, 1, 2 }, g[1])
        assert.same({ 1, 0, 1 }, g[2])
      end
    end)
  end
end)
