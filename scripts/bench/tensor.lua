-- Tensor-core benchmark (a section of scripts/bench.lua): bandwidth of the
-- fused noising op (1 - t) x + t n with one t per row and of a sum
-- reduction, sgemm, and launch overhead; beside them the machine's own
-- limits measured in the same run: the STREAM triad over host memory
-- (build/bin/stream_triad, OpenMP) and OpenBLAS's host sgemm
-- (build/bin/host_sgemm, built when OpenBLAS is installed).
-- Every figure is a best of several runs: the machine may be shared.
-- GB/s count the bytes an op must move once (reads + writes), as STREAM does.

local SIZES = { 16, 18, 20, 22, 24 } -- log2 elements
local GEMM = { 256, 512, 1024, 2048 }
local COLS = 1024                    -- row length of the noising op's {rows, cols}


local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

return function(ctx)
  local mf, now = ctx.mf, ctx.now
  local C = mf.core

  local per_call, sh = ctx.per_call, ctx.sh
  -- calls per batch so that a batch moves about 128 MB (at least one call)
  local function inner_for(bytes) return math.max(1, math.floor(128e6 / bytes)) end

  ------------------------------------------------------------ machine limits
  local triad0 = ctx.triad()

  local host = {}
  local hs = ctx.build .. "/bin/host_sgemm"
  if exists(hs) then
    for _ = 1, 2 do
      for n, g in sh(("%q %s"):format(hs, table.concat(GEMM, " "))):gmatch("(%d+)%s+([%d%.]+)") do
        n, g = tonumber(n), tonumber(g)
        host[n] = math.max(host[n] or 0, g)
      end
    end
  end

  local results = { ew = {}, red = {}, gemm = {} }

  -------------------------------------------------- fused elementwise op
  local fused = C.noise_target ~= nil
  for _, p in ipairs(SIZES) do
    local n = 1 << p
    local rows = n // COLS
    local x, z, t = mf.rand{ rows, COLS }, mf.randn{ rows, COLS }, mf.rand{ rows }
    local fn
    if fused then -- the diffusion family's fused kernel, x_t only (kind "sit": SiT/RF)
      fn = function() return C.noise_target(x, z, t, "sit", false, false) end
    else          -- composed from tensor ops: several launches
      local tc = t:reshape{ rows, 1 }
      fn = function() return (1 - tc) * x + tc * z end
    end
    local bytes = 12 * n + 4 * rows
    results.ew[p] = bytes / per_call(fn, inner_for(bytes), 5) / 1e9
  end

  ------------------------------------------------------------- reduction
  for _, p in ipairs(SIZES) do
    local n = 1 << p
    local x = mf.rand{ n }
    local bytes = 4 * n
    results.red[p] = bytes / per_call(function() return C.reduce("sum", x) end, inner_for(bytes), 5) / 1e9
  end

  ----------------------------------------------------------------- sgemm
  for _, n in ipairs(GEMM) do
    local a, b = mf.randn{ n, n }, mf.randn{ n, n }
    local flops = 2 * n * n * n
    local inner = math.max(1, math.floor(2e9 / flops))
    results.gemm[n] = flops / per_call(function() return C.matmul(a, b) end, inner, n >= 2048 and 2 or 3) / 1e9
  end

  ------------------------------------------------------- launch overhead
  -- 10,000 in-place adds on 16 elements, nobody waiting until the end
  local s, q = mf.rand{ 16 }, mf.rand{ 16 }
  local N = 10000
  local enq, total = math.huge, math.huge
  for _ = 1, 3 do
    mf.synchronize()
    local t0 = now()
    for _ = 1, N do C.binary_("add", s, q) end
    local t1 = now()
    mf.synchronize()
    local t2 = now()
    enq, total = math.min(enq, (t1 - t0) / N), math.min(total, (t2 - t0) / N)
  end

  local triad1 = ctx.triad() -- again after the device work: the better of the two
  local limit = (triad0 or triad1) and math.max(triad0 or 0, triad1 or 0) or nil

  ---------------------------------------------------------------- report
  local function ratio(v, lim) return lim and ("%5.2f"):format(v / lim) or "  n/a" end
  print(("machine limits: STREAM triad %s GB/s (host memory, OpenMP, best of 6 runs)"):format(
    limit and ("%.1f"):format(limit) or "n/a (stream_triad not built)"))
  if next(host) then
    local parts = {}
    for _, n in ipairs(GEMM) do parts[#parts + 1] = ("%d: %.1f"):format(n, host[n] or 0 / 0) end
    print("                OpenBLAS host sgemm GFLOP/s  " .. table.concat(parts, ", "))
  else
    print("                OpenBLAS host sgemm: not installed (libopenblas-dev builds build/bin/host_sgemm)")
  end
  print(("\nfused elementwise (1 - t) x + t n, t per row, {rows, %d} f32 (%s)"):format(COLS,
    fused and "one kernel: core.noise_target" or "composed tensor ops"))
  print("  elements        GB/s   / triad")
  for _, p in ipairs(SIZES) do
    print(("  2^%-2d %9d %7.1f   %s"):format(p, 1 << p, results.ew[p], ratio(results.ew[p], limit)))
  end
  print("\nreduction sum over all elements, f32 (Kahan-compensated)")
  print("  elements        GB/s   / triad")
  for _, p in ipairs(SIZES) do
    print(("  2^%-2d %9d %7.1f   %s"):format(p, 1 << p, results.red[p], ratio(results.red[p], limit)))
  end
  print("\nsgemm n x n x n, f32")
  print("     n     GFLOP/s   / OpenBLAS")
  for _, n in ipairs(GEMM) do
    print(("  %4d %11.1f   %s"):format(n, results.gemm[n], ratio(results.gemm[n], host[n])))
  end
  print(("\nlaunch overhead: %.2f us per launch (%d in-place adds of 16 elements, one synchronize; enqueue alone %.2f us)")
    :format(total * 1e6, N, enq * 1e6))
  print(("\ntargets: elementwise and reduction >= 0.70 of triad at 2^24 (now %s and %s), launch <= 10 us (now %.1f), sgemm 1024 >= 30 GFLOP/s (now %.1f)")
    :format(ratio(results.ew[24], limit), ratio(results.red[24], limit), total * 1e6, results.gemm[1024]))
end
