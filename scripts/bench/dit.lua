-- Bench section "dit": the DiT of issue 11 (input 28x28x1, patch 4 -> 49
-- tokens, hidden 256, depth 6, 4 heads, mlp_ratio 4, 10 classes) beside its
-- PyTorch peer scripts/bench_torch_dit.py, run after it in the same command
-- (when /usr/bin/python3 has torch; MOONFLOW_BENCH_TORCH=0 skips it), and one
-- table of both. Figures (median wall time of several reps after warm-up,
-- the device synchronized around each):
--   SiT step      loss, backward, AdamW step, batch 64 and 256
--   MeanFlow step loss (jvp through the DiT, use_dt; guidance_scale 1 and
--                 mixture 0, so no extra guidance pass), backward, AdamW, batch 64
--   Euler x50     50 Euler steps of SiT sampling from noise, batch 256
--   attention     F.attention on {64, 4, 256, 64}: forward 4 B h N^2 d flops
--                 (two matmuls), forward+backward 12 B h N^2 d (six matmuls);
--                 softmax flops not counted. Where the host path serves (a CPU
--                 device with OpenBLAS), the materialized path (core.nn_path
--                 "run") is measured after it, in the same run
--   sgemm         mf.matmul x W^T at the DiT's Linear shapes (batch 64: M =
--                 64 * 49 tokens) against OpenBLAS's host sgemm in the same run
--                 (build/bin/host_sgemm MxNxK, same layout), 2 M N K flops
-- MOONFLOW_BENCH_DIT=sit64,attn,... runs a subset (names as in FIGS below).
local FIGS = { "sit64", "sit256", "mf64", "euler256", "attn", "sgemm" }

local CFG = { input_size = 28, patch_size = 4, in_channels = 1, hidden_size = 256, depth = 6, num_heads = 4,
  mlp_ratio = 4, num_classes = 10 }
-- (M, N, K) of x {M, K} W^T {K, N} in the DiT at batch 64 (M = 64 * 49)
local GEMMS = {
  { "qkv", 3136, 768, 256 }, { "attn proj", 3136, 256, 256 }, { "mlp fc1", 3136, 1024, 256 },
  { "mlp fc2", 3136, 256, 1024 }, { "adaLN", 64, 1536, 256 },
}

local function median(v)
  table.sort(v)
  local n = #v
  return n % 2 == 1 and v[(n + 1) // 2] or 0.5 * (v[n // 2] + v[n // 2 + 1])
end

return function(ctx)
  local mf, now = ctx.mf, ctx.now
  local want = {}
  local sel = os.getenv("MOONFLOW_BENCH_DIT")
  for _, k in ipairs(FIGS) do want[k] = not sel or sel == "" or sel:find(k, 1, true) ~= nil end

  -- median seconds of fn() over reps runs after `warm` runs, synchronized
  local function med(fn, reps, warm)
    for _ = 1, warm or 2 do fn() end
    mf.synchronize()
    local v = {}
    for i = 1, reps do
      collectgarbage()
      local s = now()
      fn()
      mf.synchronize()
      v[i] = now() - s
    end
    return median(v)
  end

  local function dit(extra, seed)
    local o = { rngs = mf.Rngs(seed or 0) }
    for k, v in pairs(CFG) do o[k] = v end
    for k, v in pairs(extra or {}) do o[k] = v end
    return mf.nn.DiT(o), o.rngs
  end

  -- the machine: CPU model, AVX-512, load (the figures are wall clock on shared cores)
  local function loadavg() return (ctx.sh("cat /proc/loadavg"):match("^(%S+ %S+ %S+)")) or "?" end
  local cpu = ctx.sh("cat /proc/cpuinfo")
  local cores = select(2, cpu:gsub("\nprocessor%s*:", "")) + (cpu:match("^processor") and 1 or 0)
  print(("cpu: %s, %d logical cores, AVX-512 %s; load average %s"):format(cpu:match("model name%s*:%s*([^\n]+)") or "?",
    cores, cpu:find("avx512f", 1, true) and "yes" or "no", loadavg()))

  local res = {} -- key -> { value, unit }
  local function put(key, label, v, unit) res[#res + 1] = { key = key, label = label, v = v, unit = unit } end

  local net0 = dit()
  local nparams = net0:num_parameters()
  local net_dt = dit { use_dt = true }
  print(("DiT params: %d (use_dt: %d)"):format(nparams, net_dt:num_parameters()))
  net0, net_dt = nil, nil

  local function train(kind, B, reps)
    local net, rngs = dit { use_dt = kind == "MeanFlow" or nil }
    -- MeanFlow without the guidance pass (guidance_scale 1, mixture 0): the
    -- step is the jvp pass and the backward, as in the PyTorch peer
    local o = { network = net, rngs = rngs }
    if kind == "MeanFlow" then o.guidance_scale, o.guidance_mixture_ratio = 1, 0 end
    local iface = mf.interfaces[kind](o)
    local opt = mf.optim.AdamW(net, { lr = 1e-4 })
    local x = rngs.sample:normal { B, 1, 28, 28 }
    local y = rngs.sample:randint({ B }, 0, 10)
    local function step()
      opt:zero_grad()
      iface:loss(x, { y = y }).loss:mean():backward()
      opt:step()
    end
    mf.reset_stats()
    step()
    mf.synchronize()
    local launches = mf.stats().launches
    local dt = med(step, reps, 1)
    return dt, launches
  end

  if want.sit64 then
    local dt, l = train("SiT", 64, 5)
    print(("SiT step B=64       %8.1f ms  %5d launches"):format(dt * 1e3, l))
    put("sit64", "SiT step B=64 (ms)", dt * 1e3, "ms")
  end
  if want.sit256 then
    local dt, l = train("SiT", 256, 3)
    print(("SiT step B=256      %8.1f ms  %5d launches"):format(dt * 1e3, l))
    put("sit256", "SiT step B=256 (ms)", dt * 1e3, "ms")
  end
  if want.mf64 then
    local dt, l = train("MeanFlow", 64, 3)
    print(("MeanFlow step B=64  %8.1f ms  %5d launches"):format(dt * 1e3, l))
    put("mf64", "MeanFlow step B=64 (ms)", dt * 1e3, "ms")
  end
  if want.euler256 then
    local net, rngs = dit()
    net:eval()
    local sit = mf.interfaces.SiT { network = net }
    local sampler = mf.samplers.Euler { num_sampling_steps = 50 }
    local z = rngs.sample:normal { 256, 1, 28, 28 }
    -- warm-up: a 2-step run (every kernel built, the pools filled); then 3 full runs
    mf.samplers.Euler({ num_sampling_steps = 2 }):sample(rngs.sample, sit, z)
    local dt = med(function() return sampler:sample(rngs.sample, sit, z) end, 3, 0)
    print(("Euler x50 B=256     %8.1f ms"):format(dt * 1e3))
    put("euler256", "Euler x50 B=256 (ms)", dt * 1e3, "ms")
  end
  if want.attn then
    local B, h, N, d = 64, 4, 256, 64
    local g = mf.Rngs(3).sample
    local q, k, v = g:normal { B, h, N, d }, g:normal { B, h, N, d }, g:normal { B, h, N, d }
    local w = g:normal { B, h, N, d }
    local attention = mf.nn.F.attention
    local fl = 4 * B * h * N * N * d
    local qq, kk, vv = q:clone():requires_grad(), k:clone():requires_grad(), v:clone():requires_grad()
    local function measure(key, name)
      local tf = med(function() return attention(q, k, v) end, 5)
      local tb = med(function()
        qq.grad, kk.grad, vv.grad = nil, nil, nil
        attention(qq, kk, vv):backward(w)
      end, 5)
      print(("attention {64,4,256,64}%-6s fwd %8.2f ms %7.1f GFLOP/s   fwd+bwd %8.2f ms %7.1f GFLOP/s"):format(
        name, tf * 1e3, fl / tf / 1e9, tb * 1e3, 3 * fl / tb / 1e9))
      put(key .. "_f", ("attention%s fwd (GFLOP/s)"):format(name), fl / tf / 1e9, "GF")
      put(key .. "_fb", ("attention%s fwd+bwd (GFLOP/s)"):format(name), 3 * fl / tb / 1e9, "GF")
    end
    local host = mf.core.nn_attn_host()
    measure("attn", host and " host" or "")
    if host then
      local prev = mf.core.nn_path("run")
      local ok, err = pcall(measure, "attn_run", " run")
      mf.core.nn_path(prev)
      if not ok then error(err, 0) end
    end
  end
  if want.sgemm then
    local g = mf.Rngs(4).sample
    local host = {}
    local args = {}
    for _, s in ipairs(GEMMS) do args[#args + 1] = ("%dx%dx%dt"):format(s[2], s[3], s[4]) end
    local out = ctx.sh(("%q %s"):format(ctx.build .. "/bin/host_sgemm", table.concat(args, " ")))
    for line in out:gmatch("[^\n]+") do
      local key, v = line:match("^(%S+)%s+(%S+)")
      if key then host[key] = tonumber(v) end
    end
    for i, s in ipairs(GEMMS) do
      local M, Nn, K = s[2], s[3], s[4]
      local x, W = g:normal { M, K }, g:normal { Nn, K }
      local Wt = W:t()
      local fl = 2 * M * Nn * K
      local inner = math.max(1, math.floor(2e9 / fl))
      local sec = ctx.per_call(function() return mf.matmul(x, Wt) end, inner, 5)
      local gf = fl / sec / 1e9
      print(("sgemm %-9s %4dx%4dx%4d  moonflow %7.1f GFLOP/s  OpenBLAS host %7s GFLOP/s"):format(
        s[1], M, Nn, K, gf, host[args[i]] and ("%.1f"):format(host[args[i]]) or "n/a"))
      put("gemm_" .. i, ("sgemm %s %dx%dx%d (GFLOP/s)"):format(s[1], M, Nn, K), gf, "GF")
      if host[args[i]] then res[#res].host = host[args[i]] end
    end
  end

  -- the PyTorch peer, after moonflow (never both at once: they share the cores)
  local py = "/usr/bin/python3"
  local torch = {}
  local ran = false
  if os.getenv("MOONFLOW_BENCH_TORCH") ~= "0" then
    -- the subset as the figure names it matched (nothing from the environment reaches the shell)
    local names = {}
    for _, k in ipairs(FIGS) do if want[k] then names[#names + 1] = k end end
    local cmd = ("%s %q --kv %s"):format(py, ctx.root .. "/scripts/bench_torch_dit.py", table.concat(names, ","))
    print("\n$ " .. cmd)
    local f = io.popen(cmd .. " 2>&1")
    if f then
      for line in f:lines() do
        local key, v = line:match("^kv (%S+) (%S+)$")
        if key then torch[key] = tonumber(v); ran = true else print(line) end
      end
      f:close()
    end
  end

  print(("\nDiT 28x28x1 p4 h256 d6 heads4 (%d params); moonflow on %s, torch eager CPU %s threads, same run")
    :format(nparams, mf.device().name, os.getenv("MOONFLOW_TORCH_THREADS") or "2"))
  print(("%-40s %10s %10s %8s %10s"):format("figure", "moonflow", "torch", "mf speed", "OpenBLAS"))
  for _, r in ipairs(res) do
    local tv = torch[r.key]
    local speed -- > 1: moonflow faster (time ratio for ms, rate ratio for GFLOP/s)
    if tv then speed = r.unit == "ms" and tv / r.v or r.v / tv end
    print(("%-40s %10.1f %10s %8s %10s"):format(r.label, r.v, tv and ("%.1f"):format(tv) or "n/a",
      speed and ("%.2fx"):format(speed) or "-", r.host and ("%.1f"):format(r.host) or ""))
  end
  print("load average after both: " .. loadavg())
  if not ran and os.getenv("MOONFLOW_BENCH_TORCH") ~= "0" then print("(no PyTorch figures: /usr/bin/python3 without torch)") end
end
