-- mf.dist over Open MPI: all_reduce and broadcast under mpirun (every dtype
-- and op, the chunked staging path with chunks of a few bytes), and the
-- trainer under `mpirun -np 2` against the single-process run. Skips, with a
-- message, where mpirun or the MPI module is missing.
local mf = require "moonflow"
local P = require "app_proc"

local D = mf.dist

local function have_mpirun()
  local out = P.run("command -v mpirun")
  return out:match("%S") ~= nil
end

describe("mf.dist in a single process", function()
  it("is rank 0 of 1, and all_reduce and broadcast leave the tensor as it is", function()
    local built = P.exists(P.build .. "/lua/moonflow/dist_mpi.so")
    assert.are.equal(built, D.available())
    assert.are.equal(0, D.rank())
    assert.are.equal(1, D.size())
    assert.are.equal(0, D.local_rank())
    local t = mf.tensor { 1.5, -2, 3 }
    assert.are.equal(t, D.all_reduce(t, "mean"))
    assert.are.same({ 1.5, -2, 3 }, t:totable())
    D.broadcast(t, 0)
    assert.are.same({ 1.5, -2, 3 }, t:totable())
    D.barrier()
  end)

  it("gives each rank of a machine with several GPUs its own, round robin by local rank", function()
    local devs = { { index = 0, type = "cpu" }, { index = 1, type = "gpu" }, { index = 2, type = "gpu" },
      { index = 3, type = "gpu" } }
    assert.are.equal(1, D.device_for(0, devs))
    assert.are.equal(2, D.device_for(1, devs))
    assert.are.equal(3, D.device_for(2, devs))
    assert.are.equal(1, D.device_for(3, devs))
    -- one GPU, or none: the default choice (nil)
    assert.is_nil(D.device_for(1, { { index = 0, type = "cpu" }, { index = 1, type = "gpu" } }))
    assert.is_nil(D.device_for(0, { { index = 0, type = "cpu" } }))
  end)

  it("names the function and the value on bad arguments", function()
    local t = mf.tensor { 1, 2 }
    local ok, err = pcall(D.all_reduce, t, "min")
    assert.is_false(ok)
    assert.truthy(err:find("moonflow.dist.all_reduce: op must be \"sum\", \"mean\" or \"max\", got min", 1, true), err)
    ok, err = pcall(D.all_reduce, mf.tensor({ 1, 2 }, { dtype = "i32" }), "mean")
    assert.is_false(ok)
    assert.truthy(err:find("\"mean\" of an i32 tensor (use \"sum\")", 1, true), err)
    ok, err = pcall(D.broadcast, t, 1)
    assert.is_false(ok)
    assert.truthy(err:find("moonflow.dist.broadcast: root must be a rank in 0..0, got 1", 1, true), err)
    ok, err = pcall(D.all_reduce, { 1, 2 }, "sum")
    assert.is_false(ok)
    assert.truthy(err:find("moonflow.dist.all_reduce: expected a tensor, got table", 1, true), err)
  end)
end)

if not (have_mpirun() and D.available()) then
  print(("\ndist_mpi_spec: skipping the mpirun tests: %s"):format(
    not have_mpirun() and "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    or "moonflow was built without MPI (CMake found no MPI; install libopenmpi-dev and rebuild)"))
  return
end

-- mpirun for a container run as root: loopback only, no CMA single copy
-- (needs ptrace rights that containers often lack), no core binding; the
-- command runs the CLI directly (no launcher rebuild check per rank)
local ENV = ("OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_btl_tcp_if_include=lo "
  .. "OMPI_MCA_oob_tcp_if_include=lo OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
  .. "MOONFLOW_ROOT=%q MOONFLOW_BUILD=%q LUA_PATH=%q LUA_CPATH=%q"):format(P.root, P.build,
  P.root .. "/lua/?.lua;" .. P.root .. "/lua/?/init.lua;" .. P.root .. "/tests/?.lua;;", P.build .. "/lua/?.so;;")

-- env: more VAR=value words for the ranks
local function mpirun(np, args, env)
  local xs = ""
  for k in (env or ""):gmatch("([%w_]+)=") do xs = xs .. " -x " .. k end
  return P.run(("%s %s timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none -np %d "
    .. "-x LUA_PATH -x LUA_CPATH -x MOONFLOW_ROOT -x MOONFLOW_BUILD%s lua5.4 %s"):format(ENV, env or "", np, xs, args))
end
-- 64 KiB buckets: the MLP's 1.6 MB of gradients in 7 buckets, all-reduced
-- while the backward pass runs
local BUCKETS = "MOONFLOW_DIST_OVERLAP=1 MOONFLOW_DIST_BUCKET_BYTES=65536"

local function cli(args) return ("%q/lua/moonflow/app/cli.lua %s"):format(P.root, args) end

describe("mf.dist under mpirun -np 2", function()
  it("all_reduce (sum, mean, max on f32, f64, i32) and broadcast are exact, in chunks of 4 to 12 bytes too", function()
    local prefix = P.scratch("worker")
    local _, err, code = mpirun(2, ("%q/tests/dist_mpi_worker.lua %q"):format(P.root, prefix))
    assert.are.equal(0, code, err)
    local out = (P.read(prefix .. "0") or "") .. (P.read(prefix .. "1") or "")
    os.remove(prefix .. "0")
    os.remove(prefix .. "1")
    local oks, fails = 0, {}
    for line in out:gmatch("[^\n]+") do
      if line:match("^rank %d ok ") then oks = oks + 1
      elseif line:match("FAIL") then fails[#fails + 1] = line end
    end
    assert.are.same({}, fails)
    -- per rank: 4 chunk sizes x 3 sizes x (f32, f64: 3 ops + broadcast; i32: 2 + 1) + 7 = 139
    -- (the 7: two views, the gradient mean, the bucketed all-reduce twice, local ranks, done)
    assert.are.equal(2 * 139, oks, out)
  end)
end)

-- the losses of a log.csv: {step = loss string}
local function losses(dir)
  local rows = {}
  for line in io.lines(dir .. "/log.csv") do
    local s, l = line:match("^(%d+),([^,]+)")
    if s then rows[tonumber(s)] = l end
  end
  return rows
end

describe("moonflow train under mpirun -np 2", function()
  local base = P.scratch("dist")
  teardown(function() P.run(("rm -rf %q*"):format(base)) end)
  -- 50 steps of the README's job, every loss logged; warmup=100 > steps,
  -- so the learning rate does not depend on `steps` (a run stopped at 25 and
  -- resumed is the 50-step run)
  local cfg = P.root .. "/scripts/configs/two_moons_sit.lua log_every=1 checkpoint_every=25 eval_n=200 "
    .. "optimizer.warmup=100"

  it("gives the single-process losses of the same seed and global batch, to float32 rounding", function()
    local out1, err, code = P.run(ENV .. " lua5.4 " .. cli(("train %s steps=50 out=%s_one"):format(cfg, base)))
    assert.are.equal(0, code, err)
    local out2
    out2, err, code = mpirun(2, cli(("train %s steps=50 out=%s_two"):format(cfg, base)), BUCKETS)
    assert.are.equal(0, code, err)
    -- the evaluation sampled half the rows on each rank and gathered them:
    -- the energy distance of the samples to fresh data is the single run's
    -- (to the digits printed and the rounding of the samples; a missing or
    -- misplaced row moves it by far more)
    local e1 = tonumber(out1:match("energy distance ([%d.]+)"))
    local e2 = tonumber(out2:match("energy distance ([%d.]+)"))
    assert.truthy(e1 and e2, out2)
    assert.truthy(math.abs(e1 - e2) <= 1e-5 + 1e-3 * e1, ("energy distance %s vs %s"):format(e1, e2))
    -- only rank 0 prints
    local _, lines = out2:gsub("energy distance", "")
    assert.are.equal(1, lines, out2)
    local a, b = losses(base .. "_one"), losses(base .. "_two")
    local worst, at = 0, 0
    for s = 1, 50 do
      assert.truthy(a[s] and b[s], "step " .. s)
      local x, y = tonumber(a[s]), tonumber(b[s])
      local d = math.abs(x - y) / math.abs(x)
      if d > worst then worst, at = d, s end
    end
    print(("\ndist_mpi_spec: 50 steps of two_moons_sit, 1 vs 2 processes: largest relative loss difference %.3g (step %d)")
      :format(worst, at))
    -- The two runs differ only in the order of float32 sums: the loss mean
    -- (512 rows vs two means of 256), the weight gradients (a sum over 512
    -- rows vs two of 256, averaged) and the grad-norm reduction. Each is
    -- exact to ~log2(512) eps_f32 = 1e-6 relative; the log prints 7 digits
    -- (5e-7). 1e-5 leaves room for Adam carrying such differences over 50
    -- steps; one wrong row in a shard (another sample, time or noise) moves a
    -- 512-row mean loss by ~1e-3.
    assert.truthy(worst < 1e-5, ("largest relative difference %.3g at step %d"):format(worst, at))
    -- only rank 0 wrote (one run's files), and the samples match too
    assert.truthy(P.exists(base .. "_two/checkpoint.safetensors"))
  end)

  it("with the all-reduce after the backward pass instead of overlapping it, gives the same bits", function()
    local _, err, code = mpirun(2, cli(("train %s steps=50 out=%s_flat"):format(cfg, base)), "MOONFLOW_DIST_OVERLAP=0")
    assert.are.equal(0, code, err)
    local a, b = losses(base .. "_two"), losses(base .. "_flat")
    for s = 1, 50 do assert.are.equal(a[s], b[s], "step " .. s) end
  end)

  it("resumed from a checkpoint, reproduces the uninterrupted run's losses exactly", function()
    local _, err, code = mpirun(2, cli(("train %s steps=25 out=%s_stop"):format(cfg, base)), BUCKETS)
    assert.are.equal(0, code, err)
    _, err, code = mpirun(2, cli(("train %s steps=50 out=%s_stop resume=%s_stop/checkpoint.safetensors"):format(
      cfg, base, base)), BUCKETS)
    assert.are.equal(0, code, err)
    local a, b = losses(base .. "_two"), losses(base .. "_stop")
    for s = 1, 50 do assert.are.equal(a[s], b[s], "step " .. s) end
  end)

  it("ends every rank with the failing rank's message when one rank fails (no hang)", function()
    -- rank 0 refuses the folder of an earlier run; rank 1 would wait in the
    -- first all-reduce for ever without the abort
    local t0 = os.time()
    local _, err, code = mpirun(2, cli(("train %s steps=50 out=%s_two"):format(cfg, base)))
    assert.are_not.equal(0, code)
    assert.are_not.equal(124, code) -- timeout's code: a hang
    assert.truthy(err:find("moonflow: rank 0 of 2 failed: moonflow.train: " .. base .. "_two holds an earlier run", 1, true), err)
    assert.truthy(os.time() - t0 < 120)
    -- an uneven split is refused by every rank before training
    _, err, code = mpirun(2, cli(("train %s steps=5 batch=511 out=%s_odd"):format(cfg, base)))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("batch=511 does not split into 2 equal shards", 1, true), err)
  end)

  it("refuses, before any work, the kinds of run that are not data-parallel yet", function()
    local _, err, code = mpirun(2, cli(("train %s/scripts/configs/fashion_encoder.lua steps=1 out=%s_enc")
      :format(P.root, base)))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("moonflow.train: a classifier run under mpirun (2 processes) is not data-parallel yet", 1,
      true), err)
  end)

  it("logs REPA's two losses (parts.csv) as one process does, written once", function()
    local repa = P.root .. "/scripts/configs/two_moons_repa.lua log_every=2 eval_n=200 optimizer.warmup=100"
    local _, err, code = P.run(ENV .. " lua5.4 " .. cli(("train %s steps=10 out=%s_repa1"):format(repa, base)))
    assert.are.equal(0, code, err)
    _, err, code = mpirun(2, cli(("train %s steps=10 out=%s_repa2"):format(repa, base)))
    assert.are.equal(0, code, err)
    local function parts(dir)
      local rows = {}
      for line in io.lines(dir .. "/parts.csv") do rows[#rows + 1] = line end
      return rows
    end
    local a, b = parts(base .. "_repa1"), parts(base .. "_repa2")
    assert.are.equal(6, #a) -- the header and steps 2, 4, .., 10
    assert.are.equal(#a, #b)
    assert.are.equal(a[1], b[1])
    for i = 2, #a do
      local x, y = {}, {}
      for v in a[i]:gmatch("[^,]+") do x[#x + 1] = tonumber(v) end
      for v in b[i]:gmatch("[^,]+") do y[#y + 1] = tonumber(v) end
      assert.are.equal(x[1], y[1])
      for k = 2, 3 do
        assert.truthy(math.abs(x[k] - y[k]) <= 1e-5 * math.abs(x[k]), ("%s vs %s"):format(a[i], b[i]))
      end
    end
  end)

  it("trains an image config (shuffled epochs, flips, label dropout) as one process does, and resumes exactly",
    function()
    -- a DiT of 16 tokens on Fashion-MNIST; no encoder (no FD), 2-step evals
    local path = base .. "_img.lua"
    local f = assert(io.open(path, "w"))
    f:write([[return { seed = 3, data = { name = "fashion_mnist", flip = true }, label_dropout = 0.25,
      network = { kind = "DiT", patch_size = 7, hidden_size = 32, depth = 1, num_heads = 2, mlp_ratio = 2 },
      interface = { kind = "SiT", train_time_dist_type = "logitnormal", t_shift_base = 784 },
      optimizer = { lr = 1e-3, warmup = 100 }, batch = 16, log_every = 1, checkpoint_every = 4,
      evals = { { sampler = "Euler", num_sampling_steps = 2 } }, eval_n = 20 }
    ]])
    f:close()
    local _, err, code = P.run(ENV .. " lua5.4 " .. cli(("train %s steps=8 out=%s_img1"):format(path, base)))
    assert.are.equal(0, code, err)
    _, err, code = mpirun(2, cli(("train %s steps=8 out=%s_img2"):format(path, base)))
    assert.are.equal(0, code, err)
    local a, b = losses(base .. "_img1"), losses(base .. "_img2")
    for s = 1, 8 do
      local x, y = tonumber(a[s]), tonumber(b[s])
      assert.truthy(x and y, "step " .. s)
      -- 16 rows: float32 reduction order only (one wrong row moves the mean by ~1e-2)
      assert.truthy(math.abs(x - y) <= 1e-5 * math.abs(x), ("step %d: %s vs %s"):format(s, a[s], b[s]))
    end
    assert.truthy(P.exists(base .. "_img2/samples_8.png"))
    _, err, code = mpirun(2, cli(("train %s steps=4 out=%s_img3"):format(path, base)))
    assert.are.equal(0, code, err)
    _, err, code = mpirun(2, cli(("train %s steps=8 out=%s_img3 resume=%s_img3/checkpoint.safetensors")
      :format(path, base, base)))
    assert.are.equal(0, code, err)
    local c = losses(base .. "_img3")
    for s = 1, 8 do assert.are.equal(b[s], c[s], "step " .. s) end
  end)
end)
