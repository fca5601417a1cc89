-- matmul at sizes that cross the tiles of the CPU sgemm kernel (cl/gemm.cl:
-- 64-row blocks, 8 x 32 micro-tiles, 256-long p-blocks): full and partial
-- tiles, several p-blocks, transposed, offset and batched views, against Lua
-- doubles. On a CPU device with OpenBLAS, single products go to the host
-- BLAS (src/blas_host.c): the spec runs again in a child with
-- MOONFLOW_GEMM=device, so that both paths see every case. Each entry must be within the f32 dot-product bound
-- |c - ref| <= k 2^-23 sum_p |a_ip b_pj| (inputs are exact f32 values).
local mf = require "moonflow"
local H = require "helpers"

local function f32(x) return (string.unpack("f", string.pack("f", x))) end
local function rnd(shape, seed) return H.map(f32, H.rand_table(shape, seed)) end

-- reference product and the bound's sum of |terms|, from getters A(i, p), B(p, j)
local function ref(m, n, k, A, B)
  local c, s = {}, {}
  for i = 1, m do
    c[i], s[i] = {}, {}
    for j = 1, n do
      local v, w = 0, 0
      for p = 1, k do
        local t = A(i, p) * B(p, j)
        v, w = v + t, w + math.abs(t)
      end
      c[i][j], s[i][j] = v, w
    end
  end
  return c, s
end

local function check(got, c, s, k, what)
  local g = got:totable()
  for i = 1, #c do
    for j = 1, #c[1] do
      local d = math.abs(g[i][j] - c[i][j])
      if not (d <= k * 2 ^ -23 * s[i][j] + 1e-30) then
        error(("%s: C[%d][%d] = %.9g, expected %.9g (bound %.3g)"):format(what, i, j, g[i][j], c[i][j],
          k * 2 ^ -23 * s[i][j]), 2)
      end
    end
  end
end

describe("matmul across kernel tiles", function()
  -- 70 rows: one full 64-row block + 6; 66 columns: two 32-column panels + 2;
  -- k = 300: a 256-long p-block and a 44-long one
  local m, n, k = 70, 66, 300
  local a, b = rnd({ m, k }, 11), rnd({ k, n }, 12)
  local c, s = ref(m, n, k, function(i, p) return a[i][p] end, function(p, j) return b[p][j] end)

  it("plain row-major operands", function()
    check(mf.matmul(mf.tensor(a), mf.tensor(b)), c, s, k, "NN")
  end)

  it("transposed views of either or both operands", function()
    local at, bt = {}, {}
    for p = 1, k do at[p] = {} for i = 1, m do at[p][i] = a[i][p] end end
    for j = 1, n do bt[j] = {} for p = 1, k do bt[j][p] = b[p][j] end end
    local A, B = mf.tensor(at):t(), mf.tensor(bt):t()
    check(mf.matmul(A, mf.tensor(b)), c, s, k, "TN")
    check(mf.matmul(mf.tensor(a), B), c, s, k, "NT")
    check(mf.matmul(A, B), c, s, k, "TT")
  end)

  it("narrowed views with offsets and leading dimensions", function()
    local big = rnd({ m + 3, k + 5 }, 13)
    local A = mf.tensor(big):narrow(1, 3, m):narrow(2, 4, k)
    local c2, s2 = ref(m, n, k, function(i, p) return big[i + 2][p + 3] end, function(p, j) return b[p][j] end)
    check(mf.matmul(A, mf.tensor(b)), c2, s2, k, "narrowed A")
  end)

  it("batched, with a batch broadcast by expand", function()
    local m3, n3, k3 = 9, 40, 270
    local A3 = rnd({ 2, m3, k3 }, 14)
    local b3 = rnd({ k3, n3 }, 15)
    local out = mf.matmul(mf.tensor(A3), mf.tensor(b3):reshape { 1, k3, n3 }:expand { 2, k3, n3 })
    assert.same({ 2, m3, n3 }, out:shape())
    for bb = 1, 2 do
      local cb, sb = ref(m3, n3, k3, function(i, p) return A3[bb][i][p] end, function(p, j) return b3[p][j] end)
      check(out:narrow(1, bb, 1):reshape { m3, n3 }, cb, sb, k3, "batch " .. bb)
    end
  end)

  it("batched with transposed and permuted views, past the host path's size (batch m n k > 100^3)", function()
    local bb, m3, n3, k3 = 3, 40, 50, 300 -- 1.8M multiply-adds: OpenBLAS where it loads
    local A3, Bs = rnd({ m3, bb, k3 }, 16), rnd({ bb, n3, k3 }, 17)
    -- A {bb, m, k} stored as {m, bb, k} (permuted), B {bb, k, n} stored as {bb, n, k} (transposed)
    local A = mf.tensor(A3):permute { 2, 1, 3 }
    local B = mf.tensor(Bs):transpose(2, 3)
    local out = mf.matmul(A, B)
    assert.same({ bb, m3, n3 }, out:shape())
    for i = 1, bb do
      local cb, sb = ref(m3, n3, k3, function(r, p) return A3[r][i][p] end, function(p, j) return Bs[i][j][p] end)
      check(out:narrow(1, i, 1):reshape { m3, n3 }, cb, sb, k3, "batch " .. i)
    end
  end)

  it("agrees with the device's f64 product (CLBlast dgemm)", function()
    if not mf.device().fp64 then return end
    local A, B = mf.randn { 130, 257 }, mf.randn { 257, 97 }
    local d = mf.matmul(A, B) - mf.matmul(A:to("f64"), B:to("f64")):to("f32")
    local scale = mf.matmul(A:abs(), B:abs()):max():item()
    assert.is_true(d:abs():max():item() <= 257 * 2 ^ -23 * scale)
  end)

  it("passes the same cases on the device kernel (MOONFLOW_GEMM=device, in a child)", function()
    if os.getenv("MOONFLOW_GEMM") == "device" then return end -- the child itself
    local root = os.getenv("MOONFLOW_ROOT") or "."
    local cmd = ("cd %q && MOONFLOW_GEMM=device lua5.4 tests/run_busted.lua tests/gemm_blocks_spec.lua 2>&1"):format(root)
    local p = io.popen(cmd)
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.truthy(out:find("7 successes / 0 failures / 0 errors", 1, true), out)
  end)
end)
