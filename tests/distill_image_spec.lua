-- DMD2 through `moonflow train` on Fashion-MNIST at toy sizes: a tiny DiT
-- teacher (class conditional, trained 2 steps, measured by a tiny encoder),
-- distilled into a 1/2-step student with the teacher's guidance; the summary
-- gives FD, floor, class accuracy and sampling time of teacher and student
-- at each step count; the checkpoint holds the data order and resumes
-- exactly. (Needs the data set: scripts/setup.sh installs it.)
local mf = require "moonflow"
local H = require "helpers"
local Train = require "moonflow.app.train"
local Distill = require "moonflow.app.distill"
local Image = require "moonflow.app.image"
local Config = require "moonflow.app.config"

local dir = H.tmpdir()
local root = os.getenv("MOONFLOW_ROOT") or "."

-- the encoder of the metrics: a ViT of width 16 trained 4 steps
local function encoder(out)
  local c = Config.load(root .. "/scripts/configs/fashion_encoder.lua")
  for _, a in ipairs { "network.hidden_size=16", "network.depth=1", "network.num_heads=2", "batch=16", "steps=4",
    "log_every=2", "eval_every=4", "test_n=500", "checkpoint_every=0", "out=" .. out } do Config.override(c, a) end
  return Train.run(c).encoder
end

-- the teacher: fashion_sit's DiT at width 32, 2 blocks, trained 2 steps
local function teacher(out, enc)
  local c = Config.load(root .. "/scripts/configs/fashion_sit.lua")
  for _, a in ipairs { "network.hidden_size=32", "network.depth=2", "network.num_heads=2", "batch=8", "steps=2",
    "log_every=1", "checkpoint_every=0", "eval_n=20", "evals.1.num_sampling_steps=2", "grid_every=0",
    "optimizer.warmup=0", "optimizer.schedule=constant", "out=" .. out } do Config.override(c, a) end
  c.encoder = enc
  return Train.run(c).checkpoint
end

local function student_cfg(tpath, out, steps)
  return {
    seed = 3, steps = steps, batch = 8, eval_n = 20, log_every = 1, checkpoint_every = 2, out = out,
    ema = { decay = 0.5 },
    distill = {
      teacher = tpath, guidance_scale = 2, student_t_list = { 1.0, 0.5 }, fake_score_updates = 1,
      gan_loss_weight = 0.1, fake = { init = "teacher", train_time_dist_type = "uniform" },
      student_optimizer = { lr = 1e-3 },
    },
  }
end

local function rows(path)
  local t = {}
  for line in io.lines(path) do
    if line:match("^%d") then
      local r = {}
      for f in line:gmatch("[^,]+") do r[#r + 1] = f end
      t[#t + 1] = r
    end
  end
  return t
end

describe("DMD2 distillation of an image teacher", function()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)
  local enc, tpath

  it("trains on labelled Fashion-MNIST batches and reports FD, floor and accuracy beside the teacher", function()
    enc = encoder(dir .. "/encoder")
    tpath = teacher(dir .. "/teacher", enc)
    local r = Train.run(student_cfg(tpath, dir .. "/full", 4))
    assert.is_true(r.distill and r.image)
    -- the teacher at its own eval (Heun, 2 steps, guidance 2), the student at 1 and 2 steps
    local names = {}
    for i, e in ipairs(r.results) do names[i] = e.name end
    assert.are.same({ "teacher_heun_2steps_cfg2", "student_1step", "student_2steps" }, names)
    assert.are.same({ 2, 1, 2 }, { r.results[1].steps, r.results[2].steps, r.results[3].steps })
    -- the floor: FD of the first 20 test images to the first 20 train images in the encoder's features
    local e = mf.metrics.Encoder.load(enc)
    local tx = mf.data.fashion_mnist({ split = "test" }):all():narrow(1, 1, 20)
    local floor = mf.metrics.fid_fashion(tx, { encoder = e, reference_split = "train", n = 20 }).fd
    for _, res in ipairs(r.results) do
      H.close(res.floor, floor, 1e-4, 1e-6, res.name .. " floor")
      assert.is_true(res.fd >= 0 and res.fd < math.huge, res.name)
      assert.is_true(res.seconds > 0, res.name)
      -- 20 samples, labels 0..9 twice: accuracy is a multiple of 1/20
      H.close(res.accuracy * 20, math.floor(res.accuracy * 20 + 0.5), 0, 1e-4)
      assert.are.same({ 20, 1, 28, 28 }, res.samples:shape())
      assert.are.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, res.labels:totable())
      -- the accuracy is the encoder's on these samples and labels
      H.close(res.accuracy, mf.metrics.class_accuracy(res.samples, res.labels, e), 0, 1e-6)
      local w, h = mf.core.read_png(res.picture)
      assert.are.same({ 102 + 2 * 56 + 3 * 2, 24 + 10 * 56 + 11 * 2 }, { w, h }) -- 2 a class in 10 rows
    end
    local s = Train.summary(r)
    assert.truthy(s:find("teacher_heun_2steps_cfg2%s+FD [%d.]+  %(floor [%d.]+%)  class accuracy [%d.]+%%  sampling [%d.]+ s"), s)
    for _, k in ipairs { "1step", "2steps" } do
      assert.truthy(s:find("student_" .. k .. "%s+FD [%d.]+  %(floor [%d.]+, [%d.]+x the teacher's%)  class accuracy [%d.]+%%  sampling [%d.]+ s"), s)
    end
    assert.truthy(s:find("guidance 2", 1, true), s)
  end)

  it("resumes to the losses of an uninterrupted run (the data order in the checkpoint)", function()
    assert.truthy(tpath, "needs the first test's teacher")
    -- a constant learning rate: the run to 2 is the first half of the run to 4
    local half = Train.run(student_cfg(tpath, dir .. "/half", 2))
    local _, meta = mf.io.load_safetensors(half.checkpoint)
    assert.truthy(meta.data, "the checkpoint holds the data source's state")
    local resumed = Train.run(student_cfg(tpath, dir .. "/half", 4), { resume = half.checkpoint })
    local a, b = rows(dir .. "/full/log.csv"), rows(resumed.log)
    assert.are.equal(4, #a)
    assert.are.same(a, (function()
      for _, r in ipairs(b) do r[5] = nil end
      for _, r in ipairs(a) do r[5] = nil end -- (the time column)
      return b
    end)())
    -- the student's weights after the resume are the uninterrupted run's
    local bf = Distill.load(dir .. "/full/checkpoint.safetensors")
    local bh = Distill.load(resumed.checkpoint)
    assert.are.same(bf.ema.network:flat_parameters():totable(), bh.ema.network:flat_parameters():totable())
  end)

  it("trains a missing image teacher from its config first (with its encoder), then distills it", function()
    assert.truthy(enc, "needs the first test's encoder")
    -- the teacher config of teacher(), as a file, its checkpoint not yet there
    local c = Config.load(root .. "/scripts/configs/fashion_sit.lua")
    for _, a in ipairs { "network.hidden_size=32", "network.depth=2", "network.num_heads=2", "batch=8", "steps=2",
      "log_every=1", "checkpoint_every=0", "eval_n=20", "evals.1.num_sampling_steps=2", "grid_every=0" } do
      Config.override(c, a)
    end
    c.encoder = enc
    local f = assert(io.open(dir .. "/teacher_cfg.lua", "w"))
    f:write("return " .. Config.render(c) .. "\n")
    f:close()
    local tmissing = dir .. "/teacher_missing/checkpoint.safetensors"
    local cfg = student_cfg(tmissing, dir .. "/from_missing", 2)
    cfg.distill.teacher_config = dir .. "/teacher_cfg.lua"
    local said = {}
    local r = Train.run(cfg, { train_encoder = true, log = function(s) said[#said + 1] = s end })
    assert.truthy(io.open(tmissing), "the teacher's checkpoint was written")
    assert.truthy(table.concat(said, "\n"):find("the teacher checkpoint " .. tmissing .. " is missing: training it first",
      1, true), table.concat(said, "\n"))
    local names = {}
    for i, e in ipairs(r.results) do names[i] = e.name end
    assert.are.same({ "teacher_heun_2steps_cfg2", "student_1step", "student_2steps" }, names)
  end)

  it("moonflow sample draws the student at 1 and 2 steps with FD, floor and class accuracy of its samples", function()
    assert.truthy(tpath, "needs the first test's teacher")
    local P = require "app_proc"
    local out, err, code = P.moonflow(("sample %s/full/checkpoint.safetensors --n 20 --seed 9 --save"):format(dir))
    assert.are.equal(0, code, err)
    local e = mf.metrics.Encoder.load(enc)
    local labels = Image.cycle_labels(20, 10)
    for _, k in ipairs { "1step", "2steps" } do
      local fd, floor, acc = out:match("student_" .. k .. ", 20 samples: FD ([%d.]+) %(floor ([%d.]+)%), class accuracy ([%d.]+)%%")
      assert.truthy(fd, out)
      -- the printed measures are those of the saved samples (labels 0..9 twice)
      local x = mf.io.load_safetensors(("%s/full/samples_student_%s.safetensors"):format(dir, k)).samples
      assert.are.same({ 20, 1, 28, 28 }, x:shape())
      local m = mf.metrics.fid_fashion(x, { encoder = e, n = 20 })
      assert.are.equal(("%.3f %.3f"):format(m.fd, m.floor), fd .. " " .. floor)
      assert.are.equal(("%.1f"):format(100 * mf.metrics.class_accuracy(x, labels, e)), acc)
    end
  end)

  it("fashion_dmd2.lua is a checked distill config of the fashion_sit teacher at guidance 2", function()
    local c = Distill.check(Distill.complete(Config.load(root .. "/scripts/configs/fashion_dmd2.lua")))
    assert.are.equal("runs/fashion_sit/checkpoint.safetensors", c.distill.teacher)
    assert.are.equal("scripts/configs/fashion_sit.lua", c.distill.teacher_config)
    assert.are.equal(Config.load(root .. "/scripts/configs/fashion_sit.lua").evals[1].guidance_scale, c.distill.guidance_scale)
    assert.are.same({ 1.0, 0.75, 0.5, 0.25 }, c.distill.student_t_list)
  end)

  it("refuses per-rung fake scores and non-image data for an image teacher, naming the key", function()
    assert.truthy(tpath, "needs the first test's teacher")
    local c = student_cfg(tpath, dir .. "/bad", 2)
    c.distill.fake = { init = "scratch", per_rung = true }
    local ok, err = pcall(Train.run, c)
    assert.is_false(ok)
    assert.truthy(err:find("distill.fake.per_rung", 1, true), err)
    c = student_cfg(tpath, dir .. "/bad", 2)
    c.data = { name = "two_moons" }
    ok, err = pcall(Train.run, c)
    assert.is_false(ok)
    assert.truthy(err:find("moonflow.config: data must be {name = \"fashion_mnist\"", 1, true), err)
    assert.is_nil(io.open(dir .. "/bad/config.lua"))
  end)
end)
