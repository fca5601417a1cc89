-- Bench section "train": a SiT-style training step of a VelocityMLP
-- (hidden 256, depth 4, dim 2) with AdamW, at batch 256 and 4096:
--   x_t = (1 - t) x + t n, target n - x, loss = mean((net(x_t, t) - target)^2),
--   zero_grad, backward, AdamW step.
-- Prints steps/s, ms/step, kernel launches per step and peak device memory.
-- The PyTorch peer is scripts/bench_torch_train.py.
return function(ctx)
  local reps_stats
  local mf = ctx.mf
  local batches = { 256, 4096 }
  for _, B in ipairs(batches) do
    local rngs = mf.Rngs(0)
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 256, depth = 4, rngs = rngs }
    local opt = mf.optim.AdamW(net, { lr = 1e-4 })
    local x = rngs.noise:normal { B, 2 }
    local function step()
      local n = rngs.noise:normal { B, 2 }
      local t = rngs.time:uniform { B }
      local tc = t:reshape { B, 1 }
      local xt = x * (1 - tc) + n * tc
      local loss = (net(xt, t) - (n - x)):square():mean()
      opt:zero_grad()
      loss:backward()
      opt:step()
      return loss
    end
    for _ = 1, 3 do step() end -- warm caches and kernels
    mf.synchronize()
    collectgarbage()
    mf.reset_peak()
    mf.reset_stats()
    local reps = B <= 256 and 40 or 8
    local dt = math.huge -- best of 3 rounds (the machine may be shared)
    for round = 1, 3 do
      local t0 = ctx.now()
      for _ = 1, reps do step() end
      mf.synchronize()
      dt = math.min(dt, (ctx.now() - t0) / reps)
      if round == 1 then reps_stats = mf.stats() end
    end
    local st = reps_stats
    local mem = mf.memory()
    print(("train B=%-5d %8.2f steps/s  %8.2f ms/step  %5.0f launches/step  %3d reads  peak %.1f MiB"):format(
      B, 1 / dt, dt * 1e3, st.launches / reps, st.reads, (mem.peak or 0) / 2 ^ 20))
  end
end
