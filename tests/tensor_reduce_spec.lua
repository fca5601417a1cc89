-- Reductions against Lua-double references: all elements, one dim, sets of
-- dims, keepdim, negative dims, views, dtypes, and a long f32 sum.
local mf = require "moonflow"
local H = require "helpers"

local function f32(x) return (string.unpack("f", string.pack("f", x))) end

-- Lua reference: reduce nested table `x` of `shape` over the 1-based `dims`
-- with f(list of values), shaped like the tensor result.
local function ref_reduce(x, shape, dims, keepdim, f)
  local red = {}
  for _, d in ipairs(dims) do red[d < 0 and d + #shape + 1 or d] = true end
  local groups, order = {}, {}
  local idx = {}
  local function walk(t, d)
    if d > #shape then
      local key = {}
      for k = 1, #shape do if not red[k] then key[#key + 1] = idx[k] end end
      local ks = table.concat(key, ",")
      if not groups[ks] then groups[ks] = {}; order[#order + 1] = ks end
      table.insert(groups[ks], t)
      return
    end
    for i = 1, shape[d] do idx[d] = i; walk(t[i], d + 1) end
  end
  walk(x, 1)
  local oshape = {}
  for k = 1, #shape do
    if not red[k] then oshape[#oshape + 1] = shape[k] elseif keepdim then oshape[#oshape + 1] = 1 end
  end
  local pos = 0
  local function build(d)
    if d > #oshape then pos = pos + 1; return f(groups[order[pos]]) end
    local t = {}
    for i = 1, oshape[d] do t[i] = build(d + 1) end
    return t
  end
  return build(1), oshape
end

local function lsum(l) local s = 0; for _, v in ipairs(l) do s = s + v end; return s end
local function lmean(l) return lsum(l) / #l end
local function lmax(l) return math.max(table.unpack(l)) end
local function lmin(l) return math.min(table.unpack(l)) end
local function lvar(corr)
  return function(l)
    local m, s = lmean(l), 0
    for _, v in ipairs(l) do s = s + (v - m) ^ 2 end
    return s / (#l - corr)
  end
end
local function lnorm(l) local s = 0; for _, v in ipairs(l) do s = s + v * v end; return math.sqrt(s) end

local refs = { sum = lsum, mean = lmean, max = lmax, min = lmin, var = lvar(1), norm = lnorm }
local shape = { 3, 4, 5 }
local data = H.map(f32, H.rand_table(shape, 41, -2, 2))

local dimsets = { { 1 }, { 2 }, { 3 }, { -1 }, { -3 }, { 1, 3 }, { 2, -1 }, { 1, 2, 3 } }

describe("reductions", function()
  for name, f in pairs(refs) do
    it(name .. " over all elements, each dim, sets of dims, keepdim, f32 and f64", function()
      local x, xd = mf.tensor(data), mf.tensor(data, "f64")
      local all = ref_reduce(data, shape, { 1, 2, 3 }, false, f)
      local r = x[name](x)
      assert.same({}, r:shape())
      H.close(r:item(), all, 2e-6, 1e-6, name .. " all")
      H.close(xd[name](xd):item(), all, 1e-13, 1e-14, name .. " all f64")
      for _, dims in ipairs(dimsets) do
        for _, keep in ipairs { false, true } do
          local e, oshape = ref_reduce(data, shape, dims, keep, f)
          local arg = #dims == 1 and dims[1] or dims
          local y = x[name](x, arg, keep)
          local what = ("%s dims {%s} keepdim %s"):format(name, table.concat(dims, ","), tostring(keep))
          assert.same(oshape, y:shape(), what)
          H.close(y:totable(), e, 2e-6, 1e-6, what)
          H.close(xd[name](xd, arg, keep):totable(), e, 1e-13, 1e-14, what .. " f64")
          -- the option-table form
          H.close(x[name](x, { dims = arg, keepdim = keep }):totable(), e, 2e-6, 1e-6, what .. " opts")
        end
      end
    end)

    it(name .. " of non-contiguous views", function()
      local x = mf.tensor(data)
      -- permute {3, 1, 2}: shape {5, 3, 4}; reduce its dim 2 (= data's dim 1)
      local p = x:permute { 3, 1, 2 }
      assert.is_false(p:is_contiguous())
      local e = ref_reduce(data, shape, { 1 }, false, f) -- {4, 5}
      local y = p[name](p, 2) -- {5, 4}
      local et = {}
      for i = 1, 5 do et[i] = {} for j = 1, 4 do et[i][j] = e[j][i] end end
      H.close(y:totable(), et, 2e-6, 1e-6, name .. " permuted")
      -- narrow: data[:, 2:3, :]
      local sub = {}
      for i = 1, 3 do sub[i] = { data[i][2], data[i][3] } end
      local n = x:narrow(2, 2, 2)
      H.close(n[name](n, { 1, 3 }):totable(), ref_reduce(sub, { 3, 2, 5 }, { 1, 3 }, false, f), 2e-6, 1e-6,
        name .. " narrow")
      -- expand: a {1, 5} row seen as {4, 5}
      local row = x:narrow(1, 1, 1):narrow(2, 1, 1):reshape { 1, 5 }
      local ex = row:expand { 4, 5 }
      local rep = { data[1][1], data[1][1], data[1][1], data[1][1] }
      H.close(ex[name](ex, 1):totable(), ref_reduce(rep, { 4, 5 }, { 1 }, false, f), 2e-6, 1e-6, name .. " expand")
    end)
  end

  it("var takes a correction, std is its square root", function()
    local x = mf.tensor(data)
    local e0 = ref_reduce(data, shape, { 2 }, false, lvar(0))
    H.close(x:var { dims = 2, correction = 0 }:totable(), e0, 2e-6, 1e-6)
    H.close(x:std(2):totable(), H.map(math.sqrt, ref_reduce(data, shape, { 2 }, false, lvar(1))), 2e-6, 1e-6)
  end)

  it("i32 sum, max and min stay integers", function()
    local d = { { 3, -7, 2 }, { 9, 0, -1 } }
    local x = mf.tensor(d, "i32")
    assert.equal(6, x:sum():item())
    assert.equal("integer", math.type(x:sum():item()))
    assert.same({ 12, -7, 1 }, x:sum(1):totable())
    assert.same({ { 3 }, { 9 } }, x:max(2, true):totable())
    assert.same({ -7, -1 }, x:min(-1):totable())
    assert.same({ -2, 8 }, x:t():sum(1):totable())
  end)

  it("long rows take the two-pass path and stay accurate", function()
    local n = 3000
    local v = {}
    for i = 1, n do v[i] = f32(math.sin(i) * 3) end
    local x = mf.tensor({ v, v })
    H.close(x:sum(2):totable(), { lsum(v), lsum(v) }, 1e-6, 1e-5)
    H.close(x:max(2):totable(), { lmax(v), lmax(v) }, 0, 0)
    H.close(x:min():item(), lmin(v), 0, 0)
    H.close(x:norm(2):totable(), { lnorm(v), lnorm(v) }, 2e-6)
    H.close(x:mean(1):narrow(1, 1, 5):totable(), { v[1], v[2], v[3], v[4], v[5] }, 1e-6, 1e-7)
  end)

  it("odd sizes at an offset: partial runs, vector steps and tails", function()
    -- rows 2..8 of a {9, 4099} block: contiguous, offset 4099
    local rows, cols = 9, 4099
    local t = H.map(f32, H.rand_table({ rows, cols }, 77, -3, 3))
    local x = mf.tensor(t):narrow(1, 2, 7)
    local sub = { table.unpack(t, 2, 8) }
    for name, f in pairs(refs) do
      H.close(x[name](x, 2):totable(), ref_reduce(sub, { 7, cols }, { 2 }, false, f), 2e-6, 1e-5, name .. " rows")
      H.close(x[name](x, 1):totable(), ref_reduce(sub, { 7, cols }, { 1 }, false, f), 2e-6, 1e-5, name .. " cols")
      H.close(x[name](x):item(), ref_reduce(sub, { 7, cols }, { 1, 2 }, false, f), 2e-6, 1e-5, name .. " all")
    end
    -- many short rows, one long row, f64 and i32
    local short = H.map(f32, H.rand_table({ 5000, 3 }, 78))
    H.close(mf.tensor(short):sum(2):totable(), ref_reduce(short, { 5000, 3 }, { 2 }, false, lsum), 1e-6, 1e-6)
    local long = { {} }
    for i = 1, 70001 do long[1][i] = (i % 17) - 8 end
    assert.equal(ref_reduce(long, { 1, 70001 }, { 2 }, false, lsum)[1], mf.tensor(long, "i32"):sum(2):totable()[1])
    assert.equal(8, mf.tensor(long, "i32"):max():item())
    assert.equal(-8, mf.tensor(long, "i32"):min():item())
    H.close(mf.tensor(long, "f64"):var():item(), ref_reduce(long, { 1, 70001 }, { 1, 2 }, false, lvar(1)), 1e-12)
    -- a nan deep inside a long row reaches max and min
    local v = mf.tensor(long):narrow(2, 2, 70000):contiguous()
    v:narrow(2, 5000, 1):fill_(0 / 0)
    local mx, mn = v:max():item(), v:min(2):item()
    assert.is_true(mx ~= mx and mn ~= mn)
  end)

  it("an f32 sum of 10^7 elements is within 1e-6 of the exact answer", function()
    local n = 10000000
    -- 0.1 rounds to f32; n copies of it sum exactly to n * f32(0.1) in doubles
    local c = mf.full({ n }, 0.1)
    local exact = n * f32(0.1)
    assert.is_true(math.abs(c:sum():item() - exact) <= 1e-6 * exact)
    -- 0, 1, ..., n - 1 are exact in f32 (n < 2^24); their sum is n (n - 1) / 2
    local a = mf.arange(n)
    local tri = n * (n - 1) / 2
    assert.is_true(math.abs(a:sum():item() - tri) <= 1e-6 * tri)
    assert.is_true(math.abs(a:mean():item() - (n - 1) / 2) <= 1e-6 * (n - 1) / 2)
    -- a {10, 10^6} sum along rows: each row sums to the float64 answer
    local r = a:reshape { 10, n / 10 }:sum(2):totable()
    for i = 1, 10 do
      local m = n / 10
      local e = m * (i - 1) * m + m * (m - 1) / 2
      assert.is_true(math.abs(r[i] - e) <= 1e-6 * e, ("row %d: %.17g vs %.17g"):format(i, r[i], e))
    end
  end)

  it("nan propagates through max and min", function()
    local x = mf.tensor({ 1, 0, 3 }) / mf.tensor({ 1, 0, 1 }) -- {1, nan, 3}
    local m = x:max():item()
    assert.is_true(m ~= m)
    local mn = x:min():item()
    assert.is_true(mn ~= mn)
    local y = mf.tensor({ 0, 1, 3 }) / mf.tensor({ 0, 1, 1 }) -- nan first
    assert.is_true(y:max():item() ~= y:max():item())
  end)

  it("empty selections: sum is 0, empty outputs are empty, max has no value", function()
    assert.equal(0, mf.zeros({ 0 }):sum():item())
    assert.same({ 0, 0, 0 }, mf.zeros({ 3, 0 }):sum(2):totable())
    assert.same({ 0 }, mf.zeros({ 0, 5000 }):sum(2):shape())
    assert.same({ 0, 1 }, mf.zeros({ 0, 5000 }):max(2, true):shape())
    H.errors(function() mf.zeros({ 3, 0 }):max(2) end, "moonflow.max", "empty")
  end)

  it("a 0-d tensor reduces to itself", function()
    local s = mf.tensor(4.5)
    assert.equal(4.5, s:sum():item())
    assert.equal(4.5, s:max():item())
    assert.equal(4.5, s:mean():item())
  end)
end)
