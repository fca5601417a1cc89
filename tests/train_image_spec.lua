-- Image runs of `moonflow train` on Fashion-MNIST, at toy sizes: a DiT
-- trained by SiT for a few steps, resumed to the losses of an uninterrupted
-- run, its grids; the classifier task that writes the metrics' encoder; FD,
-- floor and class accuracy in the summaries; `moonflow sample` of the
-- checkpoint. (Needs the data set: scripts/setup.sh installs it.)
local mf = require "moonflow"
local H = require "helpers"
local P = require "app_proc"
local Train = require "moonflow.app.train"
local Image = require "moonflow.app.image"
local Config = require "moonflow.app.config"

local dir = H.tmpdir()
local root = os.getenv("MOONFLOW_ROOT") or "."

-- the toy DiT: hidden 32, 2 blocks, 49 tokens, 16 images a step
local function sit_cfg(out, over)
  local cfg = Config.load(root .. "/scripts/configs/fashion_sit.lua")
  for _, a in ipairs {
    "network.hidden_size=32", "network.depth=2", "network.num_heads=2", "batch=16", "steps=8", "log_every=2",
    "checkpoint_every=4", "eval_n=20", "evals.1.num_sampling_steps=2", "grid_every=4", "optimizer.warmup=0",
    "optimizer.schedule=constant", "out=" .. out,
  } do Config.override(cfg, a) end
  cfg.encoder = nil
  for k, v in pairs(over or {}) do cfg[k] = v end
  return cfg
end

local function losses(path)
  local t = {}
  for line in io.lines(path) do
    local s, l = line:match("^(%d+),([^,]+)")
    if s then t[tonumber(s)] = tonumber(l) end
  end
  return t
end

describe("image training", function()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

  it("param_shapes lists the shapes of the DiT a config builds", function()
    for _, kind in ipairs { "SiT", "MeanFlow" } do
      local cfg = Train.complete(sit_cfg(dir .. "/shapes"))
      cfg.interface = { kind = kind }
      cfg.network.mlp_ratio = 2.5
      local net = Train.build(cfg, mf.Rngs(0))
      local have, want = {}, {}
      for _, p in ipairs(net:parameters()) do have[#have + 1] = table.concat(p:shape(), "x") end
      for _, s in ipairs(Train.param_shapes(cfg)) do want[#want + 1] = table.concat(s, "x") end
      table.sort(have)
      table.sort(want)
      assert.are.same(have, want)
      assert.are.equal(kind == "MeanFlow", net.use_dt)
    end
  end)

  it("counts the sampling steps of every chunk as one progress", function()
    local net = mf.nn.DiT { input_size = 8, patch_size = 4, in_channels = 1, hidden_size = 8, depth = 1,
      num_heads = 2, num_classes = 10, rngs = mf.Rngs(0) }
    local model = mf.interfaces.SiT { network = net }
    local seen = {}
    local x, labels = Image.sample({ sampler = "Euler", num_sampling_steps = 3 }, model, net, mf.Rngs(1), 5,
      { chunk = 2, callback = function(info) seen[#seen + 1] = ("%d/%d"):format(info.i, info.steps) end })
    assert.same({ 5, 1, 8, 8 }, x:shape())
    assert.same({ 0, 1, 2, 3, 4 }, labels:totable())
    assert.same({ "1/9", "2/9", "3/9", "4/9", "5/9", "6/9", "7/9", "8/9", "9/9" }, seen)
  end)

  it("drops labels to the null class at the configured rate", function()
    local y = mf.zeros({ 4000 }, { dtype = "i32" }) + 3
    local d = Image.drop_labels(y:to("i32"), 0.25, mf.Generator(1), 10):totable()
    local null = 0
    for _, v in ipairs(d) do
      assert.is_true(v == 3 or v == 10)
      if v == 10 then null = null + 1 end
    end
    -- Binomial(4000, 0.25): sd 27.4; 5 sd
    assert.is_true(math.abs(null - 1000) < 137, null)
  end)

  it("refuses fashion_mnist without a DiT, naming the key", function()
    local cfg = sit_cfg(dir .. "/bad")
    cfg.network.kind = "VelocityMLP"
    local ok, err = pcall(Train.run, cfg)
    assert.is_false(ok)
    assert.truthy(err:find("network.kind", 1, true), err)
  end)

  it("refuses eval_every on the 2-D configs, naming the key", function()
    local cfg = Config.load(root .. "/scripts/configs/two_moons_sit.lua")
    cfg.eval_every, cfg.out = 100, dir .. "/points"
    local ok, err = pcall(Train.run, cfg)
    assert.is_false(ok)
    assert.truthy(err:find("moonflow.config: eval_every", 1, true), err)
  end)

  it("names the command that trains a missing encoder", function()
    local cfg = sit_cfg(dir .. "/no_encoder")
    cfg.encoder = dir .. "/nowhere/encoder.safetensors"
    local ok, err = pcall(Train.run, cfg)
    assert.is_false(ok)
    assert.truthy(err:find(("moonflow.train: encoder %s/nowhere/encoder.safetensors not found; train it first: "
      .. "scripts/moonflow train scripts/configs/fashion_encoder.lua out=%s/nowhere"):format(dir, dir), 1, true), err)
  end)

  it("does not train a missing encoder for a resumed run, whose figures it measured", function()
    local cfg = sit_cfg(dir .. "/no_encoder_resume")
    cfg.encoder = dir .. "/gone/encoder.safetensors"
    local ok, err = pcall(Train.run, cfg, { resume = dir .. "/no_encoder_resume.safetensors", train_encoder = true })
    assert.is_false(ok)
    assert.truthy(err:find(("moonflow.train: encoder %s/gone/encoder.safetensors not found; the run resumed from "
      .. "%s/no_encoder_resume.safetensors measured with it"):format(dir, dir), 1, true), err)
    assert.is_nil(io.open(dir .. "/gone/config.lua"))
  end)

  it("trains a few steps, writes grids of 10 rows, and a resume reproduces the losses", function()
    local full = Train.run(sit_cfg(dir .. "/full"))
    local l = losses(full.log)
    for s = 2, 8, 2 do assert.truthy(l[s] and l[s] == l[s], "no loss at step " .. s) end
    -- samples_4.png and samples_8.png: 10 rows of 10 28x28 images at scale 2, a
    -- label margin 16 wider than "T-shirt/top" (86 pixels), a 24-pixel title strip
    for _, s in ipairs { 4, 8 } do
      local w, h, c = mf.core.read_png(("%s/full/samples_%d.png"):format(dir, s))
      assert.are.same({ 102 + 10 * 56 + 11 * 2, 24 + 10 * 56 + 11 * 2, 1 }, { w, h, c })
    end
    -- 20 samples: 2 per class in 10 rows
    local w, h = mf.core.read_png(full.results[1].picture)
    assert.are.same({ 102 + 2 * 56 + 3 * 2, 24 + 10 * 56 + 11 * 2 }, { w, h })
    -- the same run stopped at step 4 (a constant learning rate does not
    -- depend on steps), then resumed to 8
    Train.run(sit_cfg(dir .. "/half", { steps = 4 }))
    local resumed = Train.run(sit_cfg(dir .. "/half"), { resume = dir .. "/half/checkpoint.safetensors" })
    assert.are.same(l, losses(resumed.log))
  end)

  it("the classifier task trains a ViT encoder; image runs report FD, floor and class accuracy", function()
    local enc_dir = dir .. "/encoder"
    local ccfg = Config.load(root .. "/scripts/configs/fashion_encoder.lua")
    for _, a in ipairs {
      "network.hidden_size=16", "network.depth=1", "network.num_heads=2", "batch=32", "steps=6", "log_every=3",
      "eval_every=3", "test_n=1000", "checkpoint_every=0", "out=" .. enc_dir,
    } do Config.override(ccfg, a) end
    local r = Train.run(ccfg)
    assert.truthy(Train.summary(r):find("test accuracy", 1, true))
    local _, cerr, ccode = P.moonflow(("sample %q"):format(r.checkpoint))
    assert.are_not.equal(0, ccode)
    assert.truthy(cerr:find("is a classifier checkpoint", 1, true), cerr)
    local acc = {}
    for line in io.lines(enc_dir .. "/accuracy.csv") do
      local s, a = line:match("^(%d+),(.+)$")
      if s then acc[tonumber(s)] = tonumber(a) end
    end
    assert.truthy(acc[3] and acc[6], "accuracy at steps 3 and 6")
    assert.are.equal(acc[6], tonumber(("%.6f"):format(r.accuracy)))
    -- the saved encoder is the trained network: its logits on the first 1000
    -- test images score 1000 * accuracy
    local enc = mf.metrics.Encoder.load(r.encoder)
    local tx, ty = mf.data.fashion_mnist({ split = "test" }):all()
    local correct = 0
    for b = 0, 1 do
      local x, y = tx:narrow(1, 500 * b + 1, 500), ty:narrow(1, 500 * b + 1, 500)
      local logits, labels = enc:logits(x):totable(), y:totable()
      for i = 1, 500 do
        local best, arg = -math.huge, nil
        for k = 1, 10 do if logits[i][k] > best then best, arg = logits[i][k], k - 1 end end
        if arg == labels[i] then correct = correct + 1 end
      end
    end
    assert.are.equal(correct, math.floor(r.accuracy * 1000 + 0.5))

    -- a REPA run aligned with and measured by that encoder; the same run
    -- stopped at step 3 (inside a log window) and resumed writes the same
    -- losses and the same parts (diffusion, alignment)
    -- (eval_every = 2: evals.csv rows at steps 2 and 4)
    local function repa_cfg(out, steps)
      local cfg = Config.load(root .. "/scripts/configs/fashion_repa.lua")
      local base = sit_cfg(out, { steps = steps, grid_every = 0, eval_every = 2 })
      base.repa, base.encoder = cfg.repa, r.encoder
      return base
    end
    local run = Train.run(repa_cfg(dir .. "/measured", 4))
    Train.run(repa_cfg(dir .. "/repa_half", 3))
    local resumed = Train.run(repa_cfg(dir .. "/repa_half", 4), { resume = dir .. "/repa_half/checkpoint.safetensors" })
    assert.are.same(losses(run.log), losses(resumed.log))
    local parts = P.read(dir .. "/measured/parts.csv")
    assert.truthy(parts:match("^step,diffusion_loss,repa_loss\n2,[^\n]+\n4,"), parts)
    assert.are.equal(parts, P.read(dir .. "/repa_half/parts.csv"))
    local e = run.results[1]

    -- evals.csv: the final summary's measurement at steps 2 and 4, the last
    -- row being the summary's own; the run stopped at 3 and resumed keeps its
    -- row at 2 and drops the one at 3 (the short run's end), so it reads as
    -- the uninterrupted run (all but the seconds column)
    local function evals(path)
      local rows, seconds = {}, {}
      local text = assert(P.read(path), "no " .. path)
      assert.are.equal("step,name,fd,floor,accuracy,seconds", text:match("^[^\n]*"))
      for line in text:gmatch("[^\n]+") do
        local st, name, fd, fl, acc, sec = line:match("^(%d+),([^,]+),([^,]*),([^,]*),([^,]*),([^,]*)$")
        if st then
          rows[#rows + 1] = { tonumber(st), name, tonumber(fd), tonumber(fl), tonumber(acc) }
          seconds[#seconds + 1] = tonumber(sec)
        end
      end
      return rows, seconds
    end
    local rows, secs = evals(dir .. "/measured/evals.csv")
    assert.are.equal(2, #rows)
    assert.are.same({ 2, e.name }, { rows[1][1], rows[1][2] })
    assert.are.same({ 4, e.name }, { rows[2][1], rows[2][2] })
    H.close(rows[2][3], e.fd, 1e-6, 0)
    H.close(rows[2][4], e.floor, 1e-6, 0)
    H.close(rows[2][5], e.accuracy, 1e-6, 0)
    -- the floor depends on the sample count only; the FD at step 2 is another model's
    H.close(rows[1][4], e.floor, 1e-6, 0)
    assert.is_true(rows[1][3] >= 0 and rows[1][3] ~= rows[2][3], tostring(rows[1][3]))
    -- seconds: the training time at the step, rising, at most the run's
    assert.is_true(secs[1] > 0 and secs[1] <= secs[2] and secs[2] <= run.time + 1e-3, table.concat(secs, " "))
    assert.are.same(rows, (evals(dir .. "/repa_half/evals.csv")))
    -- scripts/plot_fd.lua: both runs' FD against step in one picture, and the table
    local png = dir .. "/fd.png"
    local tout, terr, tcode = P.moonflow(("run scripts/plot_fd.lua %q a=%q b=%q"):format(png,
      dir .. "/measured/evals.csv", dir .. "/repa_half/evals.csv"))
    assert.are.equal(0, tcode, terr)
    local pw, ph = mf.core.read_png(png)
    assert.are.same({ 640, 400 }, { pw, ph })
    local cells = {}
    for line in tout:gmatch("[^\n]+") do
      local c = {}
      for cell in line:gmatch("|%s*([^|]-)%s*%f[|]") do c[#c + 1] = cell end
      if tonumber(c[1]) then cells[tonumber(c[1])] = c end
    end
    for k = 1, 2 do
      local fd, acc = ("%.3f"):format(rows[k][3]), ("%.1f%%"):format(100 * rows[k][5])
      local c = assert(cells[rows[k][1]], tout)
      assert.are.same({ fd, acc, fd, acc }, { c[2], c[3], c[5], c[6] })
      assert.truthy(c[4]:match("^%d+:%d%d$") and c[7]:match("^%d+:%d%d$"), tout)
    end
    assert.is_true(e.fd >= 0 and e.fd < math.huge, tostring(e.fd))
    assert.is_true(e.floor >= 0 and e.floor < math.huge, tostring(e.floor))
    -- accuracy of 20 samples: a multiple of 1/20
    assert.is_true(e.accuracy >= 0 and e.accuracy <= 1)
    H.close(e.accuracy * 20, math.floor(e.accuracy * 20 + 0.5), 0, 1e-5) -- (an f32 fraction)
    local s = Train.summary(run)
    assert.truthy(s:find("FD", 1, true) and s:find("floor", 1, true) and s:find("class accuracy", 1, true), s)

    -- `moonflow sample` of that checkpoint prints the same measures
    local out, err, code = P.moonflow(("sample %q --n 20 --steps 2"):format(run.checkpoint))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("FD [%d.]+ %(floor [%d.]+%), class accuracy [%d.]+%%"), out)
  end)
end)
