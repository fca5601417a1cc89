-- Bench section "sampler": 100 Euler steps of a SiT interface over a
-- VelocityMLP (dim 2, hidden 256, depth 4) at batch 256 and 4096, from noise
-- to samples. Prints the time per sample() call, samples/s, kernel launches
-- per step and host reads (0: nothing comes back until the caller asks).
-- The PyTorch peer is scripts/bench_torch_sampler.py (362 ms and 4.7 s
-- measured on this machine when the issue was filed).
return function(ctx)
  local mf = ctx.mf
  local steps = 100
  for _, B in ipairs { 256, 4096 } do
    local rngs = mf.Rngs(0)
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 256, depth = 4, rngs = rngs }
    net:eval()
    local sit = mf.interfaces.SiT { network = net }
    local sampler = mf.samplers.Euler { num_sampling_steps = steps }
    local z = rngs.sample:normal { B, 2 }
    local x
    local function run() x = sampler:sample(rngs.sample, sit, z) end
    run()
    mf.synchronize()
    mf.reset_stats()
    local reps = B <= 256 and 5 or 2
    local best = ctx.time(run, reps)
    local st = mf.stats()
    local calls = reps + 1 -- ctx.time runs once more to warm up
    print(("sampler Euler x%d B=%-5d %8.1f ms/sample()  %9.0f samples/s  %4.0f launches/step  %d reads"):format(
      steps, B, best * 1e3, B / best, st.launches / (calls * steps), st.reads))
    assert(x:shape()[1] == B)
  end
end
