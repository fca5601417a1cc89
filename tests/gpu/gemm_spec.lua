-- matmul on a GPU device goes through CLBlast (src/blas.c keeps cl/gemm.cl for CPUs):
-- f32 and f64, transposed operands, batches, sizes off every tile multiple.
local mf = require "moonflow"
local H = require "helpers"

local function mm(a, b)
  local out = {}
  for i = 1, #a do
    out[i] = {}
    for j = 1, #b[1] do
      local s = 0
      for p = 1, #b do s = s + a[i][p] * b[p][j] end
      out[i][j] = s
    end
  end
  return out
end
local function tr(a)
  local out = {}
  for j = 1, #a[1] do
    out[j] = {}
    for i = 1, #a do out[j][i] = a[i][j] end
  end
  return out
end

describe("matmul on the GPU path", function()
  for _, dt in ipairs { "f32", "f64" } do
    it(dt .. " {13, 9} x {9, 7}, transposed operands and a batch of 2", function()
      local a, b = H.rand_table({ 13, 9 }, 1), H.rand_table({ 9, 7 }, 2)
      local tol = dt == "f32" and 1e-5 or 1e-12
      local A, B = mf.tensor(a, { dtype = dt }), mf.tensor(b, { dtype = dt })
      H.close(mf.matmul(A, B):totable(), mm(a, b), tol, tol, "a b")
      H.close(mf.matmul(B:t(), A:t()):totable(), tr(mm(a, b)), tol, tol, "b^T a^T")
      local a2, b2 = H.rand_table({ 2, 5, 3 }, 3), H.rand_table({ 2, 3, 4 }, 4)
      local C = mf.matmul(mf.tensor(a2, { dtype = dt }), mf.tensor(b2, { dtype = dt })):totable()
      for k = 1, 2 do H.close(C[k], mm(a2[k], b2[k]), tol, tol, "batch " .. k) end
    end)
  end
end)
