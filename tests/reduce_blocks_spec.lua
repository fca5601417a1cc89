-- Reductions at shapes that take the CPU devices' fast paths (cl/reduce.cl):
-- rows split into several runs with 4 vector chains and a scalar tail, and
-- leading or middle dims folded column-wise in 64-column groups (full,
-- partial, and the last < 16 columns), against Lua doubles.
local mf = require "moonflow"
local H = require "helpers"

local function f32(x) return (string.unpack("f", string.pack("f", x))) end

-- x[b][r][i] as a flat Lua array in C order, plus the tensor
local function block(A, R, I, seed)
  local t = H.map(f32, H.rand_table({ A, R, I }, seed))
  return t, mf.tensor(t)
end

-- fold over r of x[b][r][i] with f; returns {A}{I}
local function fold_r(t, A, R, I, init, f)
  local out = {}
  for b = 1, A do
    out[b] = {}
    for i = 1, I do
      local acc = init(t[b][1][i])
      for r = 2, R do acc = f(acc, t[b][r][i]) end
      out[b][i] = acc
    end
  end
  return out
end

local add = function(s, x) return s + x end
local id = function(x) return x end

describe("reductions over leading and middle dims", function()
  for _, dims in ipairs { { 1, 300, 64 }, { 2, 7, 100 }, { 3, 33, 16 }, { 1, 1, 130 }, { 2, 260, 79 } } do
    local A, R, I = dims[1], dims[2], dims[3]
    it(("sum, sum of squares, max and min over R of {%d, %d, %d}"):format(A, R, I), function()
      local t, x = block(A, R, I, A * 1000 + R + I)
      local sum = fold_r(t, A, R, I, id, add)
      local sq = fold_r(t, A, R, I, function(v) return v * v end, function(s, v) return s + v * v end)
      local mx = fold_r(t, A, R, I, id, math.max)
      local mn = fold_r(t, A, R, I, id, math.min)
      -- |sum| errors: a few ulps of sum |x| <= R
      H.close(x:sum(2):totable(), sum, 0, R * 2 ^ -22, "sum")
      H.close(mf.core.reduce("sumsq", x, 2):totable(), sq, 0, R * 2 ^ -22, "sumsq")
      H.close(x:max(2):totable(), mx, 0, 0, "max")
      H.close(x:min(2):totable(), mn, 0, 0, "min")
      -- keepdim keeps the reduced dim as 1
      assert.same({ A, 1, I }, x:sum(2, true):shape())
      if A == 1 then -- the same fold over the leading dim of {R, I}
        H.close(x:reshape { R, I }:sum(1):totable(), sum[1], 0, R * 2 ^ -22, "sum dim 1")
      end
    end)
  end

  it("folds two leading dims at once, and i32", function()
    local t, x = block(4, 5, 48, 7)
    local want = {}
    for i = 1, 48 do
      local s = 0
      for b = 1, 4 do for r = 1, 5 do s = s + t[b][r][i] end end
      want[i] = s
    end
    H.close(x:sum { 1, 2 }:totable(), want, 0, 20 * 2 ^ -22, "sum {1, 2}")
    local iv = mf.arange(0, 3 * 40, { dtype = "i32" }):reshape { 3, 40 }
    local isum, imax = {}, {}
    for i = 1, 40 do isum[i] = (i - 1) * 3 + 40 * 3; imax[i] = 80 + i - 1 end
    assert.same(isum, iv:sum(1):totable())
    assert.same(imax, mf.core.reduce("max", iv, 1):totable())
  end)

  it("max and min carry a NaN of any row through", function()
    local x = mf.zeros { 5, 40 }
    local nan = mf.zeros { 1, 40 } / mf.zeros { 1, 40 }
    local y = mf.cat({ x:narrow(1, 1, 2), nan, x:narrow(1, 1, 2) }, 1)
    for _, v in ipairs(y:max(1):totable()) do assert.is_true(v ~= v) end
    for _, v in ipairs(y:min(1):totable()) do assert.is_true(v ~= v) end
  end)

  it("row sums split into runs keep f32 accuracy (10^6 elements per row)", function()
    local n = 1000003
    local x = mf.rand { 2, n }
    local exact = x:to("f64"):sum(2):totable()
    local got = x:sum(2):totable()
    for r = 1, 2 do assert.is_true(math.abs(got[r] - exact[r]) <= 1e-6 * exact[r]) end
  end)
end)
