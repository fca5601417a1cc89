-- Bench section "diffusion": the fused kernels of cl/diffusion.cl in GB/s
-- beside the STREAM triad (build/bin/stream_triad, host memory, OpenMP), and
-- SiT / MeanFlow loss-plus-backward steps per second with a VelocityMLP.
-- The PyTorch peer of the steps is scripts/bench_torch_diffusion.py (same
-- network, batch and step). GB/s count the bytes an op must move once:
--   noise+target: read x, n; write x_t, target       16 N bytes (f32)
--   x_t only:     read x, n; write x_t               12 N bytes
--   loss:         read out, target (+ B weights)      8 N bytes
-- Every figure is a best of several runs: the machine may be shared.
local SHAPES = { { 256, 4096 }, { 1024, 12288 }, { 4096, 4096 }, { 65536, 2 }, { 1000, 3071 } }


return function(ctx)
  local mf, now = ctx.mf, ctx.now
  local C = mf.core

  local per_call = ctx.per_call

  local triad = ctx.triad() or 0
  if triad > 0 then
    print(("STREAM triad (host, 16M floats): %.2f GB/s"):format(triad))
  else
    print("STREAM triad: build/bin/stream_triad not found (build first)")
  end
  local function pct(gbs) return triad > 0 and ("%5.0f%%"):format(100 * gbs / triad) or "    -" end

  print(("%-14s %-22s %9s %7s"):format("shape", "kernel", "GB/s", "triad"))
  for _, s in ipairs(SHAPES) do
    local B, D = s[1], s[2]
    local N = B * D
    local rngs = mf.Rngs(1)
    local x, n = rngs.noise:normal({ B, D }), rngs.noise:normal({ B, D })
    local t, w = rngs.time:uniform({ B }), rngs.time:uniform({ B })
    local inner = math.max(1, math.floor(64e6 / (16 * N)))
    local cases = {
      { "noise+target", 16 * N, function() return C.noise_target(x, n, t, "sit", false, true) end },
      { "x_t only", 12 * N, function() return C.noise_target(x, n, t, "sit", false, false) end },
      { "weighted loss", 8 * N + 8 * B, function() return C.rowred(x, n, w, 1 / D, "sqerr") end },
    }
    for _, c in ipairs(cases) do
      local sec = per_call(c[3], inner, 5)
      local gbs = c[2] / sec / 1e9
      print(("%-14s %-22s %9.2f %7s"):format(("{%d, %d}"):format(B, D), c[1], gbs, pct(gbs)))
    end
  end

  -- training steps: loss + backward (no optimizer), VelocityMLP dim 2
  local H, DEPTH = 256, 4
  print(("\nloss + backward, VelocityMLP dim 2 hidden %d depth %d, 10 classes, use_dt"):format(H, DEPTH))
  for _, B in ipairs { 256, 1024 } do
    for _, kind in ipairs { "SiT", "MeanFlow" } do
      local rngs = mf.Rngs(0)
      local net = mf.nn.VelocityMLP { dim = 2, hidden = H, depth = DEPTH, num_classes = 10, use_dt = true, rngs = rngs }
      local o = { network = net, rngs = rngs, t_shift_base = 2 } -- shift 1 for dim 2
      if kind == "MeanFlow" then o.guidance_scale, o.guidance_mixture_ratio = 1, 0 end
      local iface = mf.interfaces[kind](o)
      local x = rngs.sample:normal({ B, 2 })
      local y = rngs.sample:randint({ B }, 0, 10)
      local function step()
        net:zero_grad()
        iface:loss(x, { y = y }).loss:mean():backward()
      end
      for _ = 1, 2 do step() end
      mf.synchronize()
      local reps, t0 = 0, now()
      repeat
        step()
        mf.synchronize()
        reps = reps + 1
      until now() - t0 > 3 and reps >= 3
      local dt = (now() - t0) / reps
      print(("%-8s B=%-5d %8.2f steps/s  %8.1f ms/step"):format(kind, B, 1 / dt, dt * 1e3))
    end
  end
end
