-- matmul (2-D, batched 3-D, transposed operands without copies), cat,
-- index_select and gather against Lua loops.
local mf = require "moonflow"
local H = require "helpers"

local function f32(x) return (string.unpack("f", string.pack("f", x))) end
local function rnd(shape, seed) return H.map(f32, H.rand_table(shape, seed)) end

local function mm(a, b) -- Lua reference in doubles
  local m, k, n = #a, #b, #b[1]
  local c = {}
  for i = 1, m do
    c[i] = {}
    for j = 1, n do
      local s = 0
      for l = 1, k do s = s + a[i][l] * b[l][j] end
      c[i][j] = s
    end
  end
  return c
end
local function tr(a)
  local t = {}
  for j = 1, #a[1] do t[j] = {} for i = 1, #a do t[j][i] = a[i][j] end end
  return t
end
local function bmm(a, b)
  local c = {}
  for i = 1, #a do c[i] = mm(a[i], b[i]) end
  return c
end

-- one launch (the gemm) and one allocation (the output): no operand copies.
-- On CPU devices f32 goes to cl/gemm.cl (one kernel); f64, and f32 with
-- MOONFLOW_GEMM=clblast, go to CLBlast, which on PoCL enqueues exactly one
-- XgemmDirect* kernel per call (checked by intercepting
-- clEnqueueNDRangeKernel); mf_matmul counts either as one launch. On GPUs
-- CLBlast's indirect path may add its own pad/transpose kernels, which
-- mf.stats does not see: they are CLBlast's, not copies made by moonflow.
local function no_copy(A, B)
  mf.synchronize()
  mf.reset_stats()
  local out = mf.matmul(A, B)
  local s = mf.stats()
  assert.equal(1, s.launches, "launches")
  assert.equal(1, s.allocs + s.reuses, "allocations")
  return out
end

describe("matmul", function()
  local a, b = rnd({ 5, 7 }, 1), rnd({ 7, 3 }, 2)

  it("2-D products match Lua loops in f32 and f64", function()
    local c = no_copy(mf.tensor(a), mf.tensor(b))
    assert.same({ 5, 3 }, c:shape())
    H.close(c:totable(), mm(a, b), 1e-5, 1e-6)
    local cd = mf.matmul(mf.tensor(a, "f64"), mf.tensor(b, "f64"))
    assert.equal("f64", cd:dtype())
    H.close(cd:totable(), mm(a, b), 1e-14, 1e-14)
    H.close(mf.tensor(a):matmul(mf.tensor(b)):totable(), mm(a, b), 1e-5, 1e-6)
  end)

  it("transposed operands go to CLBlast as flags, without copies", function()
    local at, bt = mf.tensor(tr(a)), mf.tensor(tr(b)) -- stored transposed
    for _, dt in ipairs { "f32", "f64" } do
      local A, B = at:to(dt):t(), bt:to(dt):t()
      assert.is_false(A:is_contiguous())
      local tol = dt == "f64" and 1e-14 or 1e-5
      H.close(no_copy(A, mf.tensor(b, dt)):totable(), mm(a, b), tol, 1e-6)
      H.close(no_copy(mf.tensor(a, dt), B):totable(), mm(a, b), tol, 1e-6)
      H.close(no_copy(A, B):totable(), mm(a, b), tol, 1e-6)
      -- (A B)^T = B^T A^T with both operands transposed views
      H.close(no_copy(mf.tensor(b, dt):t(), mf.tensor(a, dt):t()):totable(),
        tr(mm(a, b)), tol, 1e-6)
    end
  end)

  it("row-strided views (narrow) pass their leading dimension and offset", function()
    local big = rnd({ 6, 10 }, 3)
    local sub = {}
    for i = 2, 6 do sub[i - 1] = {} for j = 3, 9 do sub[i - 1][j - 2] = big[i][j] end end -- {5, 7}
    local A = mf.tensor(big):narrow(1, 2, 5):narrow(2, 3, 7)
    H.close(no_copy(A, mf.tensor(b)):totable(), mm(sub, b), 1e-5, 1e-6)
    -- a transposed narrow: columns 2..6 of a {7, 8} block seen as {5, 7}
    local store = rnd({ 7, 8 }, 4)
    local As = mf.tensor(store):narrow(2, 2, 5):t()
    local ref = {}
    for i = 1, 5 do ref[i] = {} for l = 1, 7 do ref[i][l] = store[l][i + 1] end end
    H.close(no_copy(As, mf.tensor(b)):totable(), mm(ref, b), 1e-5, 1e-6)
  end)

  it("vectors, empty and zero-k products", function()
    local r, c = rnd({ 1, 7 }, 5), rnd({ 7, 1 }, 6)
    H.close(mf.matmul(mf.tensor(r), mf.tensor(c)):totable(), mm(r, c), 1e-5, 1e-6)
    H.close(mf.matmul(mf.tensor(c), mf.tensor(r)):totable(), mm(c, r), 1e-5, 1e-6)
    H.close(mf.matmul(mf.tensor(r[1]):reshape { 7, 1 }:t(), mf.tensor(b)):totable(), mm(r, b), 1e-5, 1e-6)
    assert.same({ 0, 3 }, mf.matmul(mf.zeros({ 0, 7 }), mf.tensor(b)):shape())
    assert.same({ { 0, 0 }, { 0, 0 } }, mf.matmul(mf.zeros({ 2, 0 }), mf.zeros({ 0, 2 })):totable())
  end)

  it("batched 3-D products, with permuted and transposed batch views", function()
    local A, B = rnd({ 3, 4, 5 }, 7), rnd({ 3, 5, 2 }, 8)
    local ref = bmm(A, B)
    H.close(no_copy(mf.tensor(A), mf.tensor(B)):totable(), ref, 1e-5, 1e-6)
    H.close(mf.matmul(mf.tensor(A, "f64"), mf.tensor(B, "f64")):totable(), ref, 1e-14, 1e-14)
    -- A stored as {4, 3, 5} (batch in the middle), permuted to {3, 4, 5}
    local Am = {}
    for i = 1, 4 do Am[i] = {} for bb = 1, 3 do Am[i][bb] = A[bb][i] end end
    local Ap = mf.tensor(Am):permute { 2, 1, 3 }
    assert.is_false(Ap:is_contiguous())
    H.close(no_copy(Ap, mf.tensor(B)):totable(), ref, 1e-5, 1e-6)
    -- B stored as {3, 2, 5}, transposed in its last two dims
    local Bs = {}
    for bb = 1, 3 do Bs[bb] = tr(B[bb]) end
    local Bt = mf.tensor(Bs):transpose(2, 3)
    H.close(no_copy(mf.tensor(A), Bt):totable(), ref, 1e-5, 1e-6)
    H.close(no_copy(Ap, Bt):totable(), ref, 1e-5, 1e-6)
    H.close(mf.matmul(Ap:to("f64"), mf.tensor(Bs, "f64"):transpose(2, 3)):totable(), ref, 1e-14, 1e-14)
    -- f64 goes through CLBlast on every device: the same views as flags
    local Ap64, Bt64 = mf.tensor(Am, "f64"):permute { 2, 1, 3 }, mf.tensor(Bs, "f64"):transpose(2, 3)
    H.close(no_copy(Ap64, mf.tensor(B, "f64")):totable(), ref, 1e-14, 1e-14)
    H.close(no_copy(mf.tensor(A, "f64"), Bt64):totable(), ref, 1e-14, 1e-14)
    H.close(no_copy(Ap64, Bt64):totable(), ref, 1e-14, 1e-14)
    -- a broadcast batch (stride 0) is packed first and still right
    local one = mf.tensor({ A[1] }):expand { 3, 4, 5 }
    H.close(mf.matmul(one, mf.tensor(B)):totable(), bmm({ A[1], A[1], A[1] }, B), 1e-5, 1e-6)
  end)

  it("f32 through CLBlast (MOONFLOW_GEMM=clblast, as on GPUs) in a child: views without copies", function()
    local function sh_quote(q) return "'" .. q:gsub("'", "'\\''") .. "'" end
    local code = ([[
package.path = %q; package.cpath = %q
local mf = require "moonflow"
local function check(what, got, want)
  local g, w = got:tolist(), want:tolist()
  for i = 1, #w do
    if math.abs(g[i] - w[i]) > 1e-4 * (1 + math.abs(w[i])) then print("bad", what, i, g[i], w[i]) return end
  end
  print("ok", what)
end
local function product(a, b) -- reference: contiguous copies, 2-D loops on the host
  local A, B = a:contiguous():totable(), b:contiguous():totable()
  local C = {}
  for i = 1, #A do C[i] = {} for j = 1, #B[1] do
    local s = 0 for l = 1, #B do s = s + A[i][l] * B[l][j] end C[i][j] = s end end
  return mf.tensor(C)
end
local g = mf.Generator(5)
local a, b = g:normal({ 33, 17 }), g:normal({ 17, 9 })
local at, bt = g:normal({ 17, 33 }):t(), g:normal({ 9, 17 }):t()
local big = g:normal({ 40, 30 }):narrow(1, 3, 33):narrow(2, 2, 17)
for _, c in ipairs { { "NN", a, b }, { "TN", at, b }, { "NT", a, bt }, { "TT", at, bt }, { "ld", big, b } } do
  mf.synchronize(); mf.reset_stats()
  local y = mf.matmul(c[2], c[3])
  print("launches", c[1], mf.stats().launches)
  check(c[1], y, product(c[2], c[3]))
end
local A3, B3 = g:normal({ 17, 3, 33 }):permute { 2, 3, 1 }, g:normal({ 3, 9, 17 }):transpose(2, 3)
local y = mf.matmul(A3, B3)
for i = 1, 3 do
  check("batch " .. i, y:narrow(1, i, 1):reshape { 33, 9 },
    product(A3:narrow(1, i, 1):reshape { 33, 17 }, B3:narrow(1, i, 1):reshape { 17, 9 }))
end
]]):format(package.path, package.cpath)
    local p = io.popen("MOONFLOW_GEMM=clblast lua5.4 -e " .. sh_quote(code) .. " 2>&1")
    local out = p:read("a")
    assert.is_true(p:close(), out)
    for _, what in ipairs { "NN", "TN", "NT", "TT", "ld", "batch 1", "batch 2", "batch 3" } do
      assert.truthy(out:find("ok\t" .. what, 1, true) or out:find("ok\t" .. what .. "\n", 1, true), out)
    end
    for _, what in ipairs { "NN", "TN", "NT", "TT", "ld" } do
      assert.truthy(out:find("launches\t" .. what .. "\t1\n", 1, true), out)
    end
    assert.falsy(out:find("bad", 1, true), out)
  end)

  it("a larger product stays within f32 accumulation error", function()
    local n = 64
    local A, B = rnd({ n, n }, 9), rnd({ n, n }, 10)
    H.close(mf.matmul(mf.tensor(A), mf.tensor(B)):totable(), mm(A, B), 1e-4, 1e-5)
  end)

  it("sizes that are not multiples of any tile, transposed and batched", function()
    local m, k, n = 70, 45, 37
    local A, B = rnd({ m, k }, 13), rnd({ k, n }, 14)
    local ref = mm(A, B)
    for _, dt in ipairs { "f32", "f64" } do
      local tol = dt == "f64" and 1e-13 or 2e-5
      H.close(mf.matmul(mf.tensor(A, dt), mf.tensor(B, dt)):totable(), ref, tol, 1e-5, dt)
      H.close(no_copy(mf.tensor(tr(A), dt):t(), mf.tensor(tr(B), dt):t()):totable(), ref, tol, 1e-5, dt .. " TT")
      -- a batch of 2 stored {2, m, k + 5}, narrowed: row stride k + 5, batch stride m (k + 5)
      local S = rnd({ 2, m, k + 5 }, 15)
      local A2 = mf.tensor(S, dt):narrow(3, 3, k)
      local B2 = mf.tensor({ B, tr(mf.tensor(B):t():contiguous():totable()) }, dt) -- B twice
      local out = no_copy(A2, B2):totable()
      for bb = 1, 2 do
        local Ab = {}
        for i = 1, m do Ab[i] = { table.unpack(S[bb][i], 3, k + 2) } end
        H.close(out[bb], mm(Ab, B), tol, 1e-5, dt .. " batch " .. bb)
      end
    end
  end)
end)

describe("cat", function()
  it("concatenates along every dim, negative dims, views and dtypes", function()
    local x = { { { 1, 2 }, { 3, 4 } } } -- {1, 2, 2}
    local y = { { { 5, 6 }, { 7, 8 } }, { { 9, 10 }, { 11, 12 } } } -- {2, 2, 2}
    local c1 = mf.cat({ mf.tensor(x), mf.tensor(y) }, 1)
    assert.same({ x[1], y[1], y[2] }, c1:totable())
    local a, b = mf.tensor(y), mf.tensor(y):narrow(2, 1, 1) -- {2, 2, 2} and {2, 1, 2}
    assert.same({ { { 5, 6 }, { 7, 8 }, { 5, 6 } }, { { 9, 10 }, { 11, 12 }, { 9, 10 } } },
      mf.cat({ a, b }, 2):totable())
    local t = mf.tensor(y):transpose(2, 3) -- {2, 2, 2} non-contiguous
    assert.same({ { { 5, 6, 5, 7 }, { 7, 8, 6, 8 } }, { { 9, 10, 9, 11 }, { 11, 12, 10, 12 } } },
      mf.cat({ a, t }, -1):totable())
    assert.same({ 1, 2, 3, 4, 5 }, mf.cat({ mf.tensor({ 1, 2 }, "i32"), mf.tensor({ 3 }, "i32"),
      mf.tensor({ 4, 5 }, "i32") }):totable())
    local d = mf.cat({ mf.tensor({ 0.1 }, "f64"), mf.zeros({ 0 }, "f64"), mf.tensor({ 0.2 }, "f64") }, 1)
    assert.same({ 0.1, 0.2 }, d:totable())
    assert.same({ 2, 3 }, mf.stack({ mf.tensor({ 1, 2, 3 }), mf.tensor({ 4, 5, 6 }) }):shape())
    assert.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, mf.stack({ mf.tensor({ 1, 2, 3 }), mf.tensor({ 4, 5, 6 }) }, 2):totable())
  end)
end)

describe("index_select and gather", function()
  local x = rnd({ 4, 3 }, 11)

  it("index_select picks rows or columns, repeats allowed", function()
    local idx = mf.tensor({ 2, 0, 2, 3 }, "i32")
    assert.same({ x[3], x[1], x[3], x[4] }, mf.tensor(x):index_select(1, idx):totable())
    local cidx = mf.tensor({ 2, 2, 0 }, "i32")
    local e = {}
    for i = 1, 4 do e[i] = { x[i][3], x[i][3], x[i][1] } end
    assert.same(e, mf.tensor(x):index_select(2, cidx):totable())
    assert.same(e, mf.tensor(x):index_select(-1, cidx):totable())
    -- from a transposed view, f64 and i32 sources
    assert.same(tr(e), mf.tensor(tr(x)):t():index_select(2, cidx):t():totable())
    assert.same({ x[4], x[1] }, mf.tensor(x, "f64"):index_select(1, mf.tensor({ 3, 0 }, "i32")):totable())
    local labels = mf.tensor({ 10, 20, 30 }, "i32")
    assert.same({ 30, 10, 10 }, labels:index_select(1, mf.tensor({ 2, 0, 0 }, "i32")):totable())
    -- a 3-D source along its middle dim
    local z = rnd({ 2, 3, 2 }, 12)
    local r = mf.tensor(z):index_select(2, mf.tensor({ 1 }, "i32")):totable()
    assert.same({ { z[1][2] }, { z[2][2] } }, r)
  end)

  it("index tensors at an offset, and a large embedding lookup", function()
    local idx = mf.tensor({ 9, 2, 0, 1, 7 }, "i32"):narrow(1, 2, 3) -- {2, 0, 1}, offset 1
    assert.same({ x[3], x[1], x[2] }, mf.tensor(x):index_select(1, idx):totable())
    local g = mf.tensor({ { 5, 1, 2, 0 }, { 5, 0, 0, 1 } }, "i32"):narrow(2, 2, 3) -- {{1, 2, 0}, {0, 0, 1}}
    local e = { { x[2][1], x[3][2], x[1][3] }, { x[1][1], x[1][2], x[2][3] } }
    assert.same(e, mf.tensor(x):gather(1, g):totable())
    local V, D, N = 1000, 16, 3000
    local tab = mf.arange(V * D):reshape { V, D } -- row r holds r * D .. r * D + D - 1
    local ids = {}
    for i = 1, N do ids[i] = (i * 7919) % V end
    local out = tab:index_select(1, mf.tensor(ids, "i32")):totable()
    for i = 1, N, 97 do
      assert.equal(ids[i] * D, out[i][1])
      assert.equal(ids[i] * D + D - 1, out[i][D])
    end
  end)

  it("gather takes idx[m] along dim for every position m", function()
    local idx = { { 3, 0, 1 }, { 0, 0, 2 } } -- {2, 3} into dim 1 of x {4, 3}
    local e = {}
    for i = 1, 2 do e[i] = {} for j = 1, 3 do e[i][j] = x[idx[i][j] + 1][j] end end
    assert.same(e, mf.tensor(x):gather(1, mf.tensor(idx, "i32")):totable())
    local idx2 = { { 2 }, { 0 }, { 1 }, { 2 } } -- {4, 1} into dim 2
    local e2 = {}
    for i = 1, 4 do e2[i] = { x[i][idx2[i][1] + 1] } end
    assert.same(e2, mf.tensor(x):gather(2, mf.tensor(idx2, "i32")):totable())
    assert.same(e2, mf.tensor(tr(x)):t():gather(-1, mf.tensor(idx2, "i32")):totable())
    assert.same(e2, mf.tensor(x, "f64"):gather(2, mf.tensor(idx2, "i32")):totable())
    assert.same({ { 7 }, { 5 } }, mf.tensor({ { 5, 7 }, { 5, 9 } }, "i32"):gather(2, mf.tensor({ { 1 }, { 0 } }, "i32")):totable())
  end)
end)
