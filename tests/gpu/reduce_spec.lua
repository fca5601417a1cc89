-- GPU shapes of cl/reduce.cl on oclgrind: one pass and the two-pass partials (rows
-- of more than 2 x 256 elements), f32, f64 and i32, reduced dims in any position.
local mf = require "moonflow"
local H = require "helpers"

local function f32(v) return (string.unpack("f", string.pack("f", v))) end
local function sum(t) local s = 0; for _, v in ipairs(t) do s = s + v end; return s end

describe("reductions on the GPU shapes", function()
  it("sum, mean, max, min over each dim of a {6, 5, 7}", function()
    local x = H.map(f32, H.rand_table({ 6, 5, 7 }, 1))
    local t = mf.tensor(x)
    local s1 = t:sum(2):totable()
    for i = 1, 6 do
      for k = 1, 7 do
        local s, m = 0, -math.huge
        for j = 1, 5 do s = s + x[i][j][k]; m = math.max(m, x[i][j][k]) end
        H.close({ s1[i][k] }, { s }, 1e-6, 1e-6)
        H.close({ t:max(2):totable()[i][k] }, { m }, 0, 0)
      end
    end
    H.close({ t:mean():item() }, { sum(H.flatten(x)) / 210 }, 1e-6, 1e-7)
    H.close({ t:min():item() }, { math.min(table.unpack(H.flatten(x))) }, 0, 0)
  end)

  it("long rows take two passes: {3, 1500} f32 and f64 sums, sums of squares, var", function()
    local x = H.rand_table({ 3, 1500 }, 2)
    for _, dt in ipairs { "f32", "f64" } do
      local t = mf.tensor(x, { dtype = dt })
      local s, q = t:sum(2):totable(), t:var(2):totable()
      for r = 1, 3 do
        local mu = sum(x[r]) / 1500
        local v = 0
        for _, e in ipairs(x[r]) do v = v + (e - mu) ^ 2 end
        H.close({ s[r] }, { sum(x[r]) }, dt == "f32" and 1e-5 or 1e-12, 1e-6, "sum " .. dt)
        H.close({ q[r] }, { v / 1499 }, dt == "f32" and 1e-5 or 1e-12, 1e-7, "var " .. dt)
      end
    end
  end)

  it("max and min in f64 and i32, sum of squares through the norm", function()
    local x = H.flatten(H.rand_table({ 900 }, 4))
    local t = mf.tensor(x, { dtype = "f64" })
    assert.equal(math.max(table.unpack(x)), t:max():item())
    assert.equal(math.min(table.unpack(x)), t:min():item())
    local q = 0
    for _, v in ipairs(x) do q = q + v * v end
    H.close({ mf.tensor(x):norm():item() }, { math.sqrt(q) }, 1e-5, 1e-6)
    local v = {}
    for i = 1, 900 do v[i] = (i * 7919) % 2001 - 1000 end
    assert.equal(math.min(table.unpack(v)), mf.tensor(v, { dtype = "i32" }):min():item())
  end)

  it("i32 sums and max stay exact", function()
    local v = {}
    for i = 1, 3000 do v[i] = (i * 7919) % 2001 - 1000 end
    local t = mf.tensor(v, { dtype = "i32" })
    assert.equal(sum(v), t:sum():item())
    assert.equal(math.max(table.unpack(v)), t:max():item())
  end)
end)
