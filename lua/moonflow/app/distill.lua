-- `moonflow train` with a distill = {...} block: DMD2 few-step distillation
-- of a teacher (a moonflow checkpoint's EMA weights, or an exact oracle
-- mixture) into a student generator; checkpoints, exact resume, and a
-- summary of the student at 1 and len(student_t_list) steps beside the
-- teacher at its own sampler, with sampling times.
local mf = require "moonflow"
local Config = require "moonflow.app.config"
local Progress = require "moonflow.app.progress"
local Image = require "moonflow.app.image"

local Distill = {}

local function bad(path, fmt, ...) error(("moonflow.config: %s " .. fmt):format(path, ...), 0) end

local defaults = {
  seed = 0,
  steps = 2000,
  batch = 256,
  ema = { decay = 0.99 },
  eval_n = 2000,
  out = "runs/distill",
  log_every = 100,
  checkpoint_every = 500,
}
local distill_defaults = {
  student_t_list = { 1.0 },
  sample_t_cfg = { time_dist_type = "uniform", min_t = 0.02, max_t = 0.98 },
  fake_score_updates = 5,
  gan_loss_weight = 0,
  student_sample_type = "sde",
  student = { init = "teacher", hidden = 256, depth = 4 },
  fake = { init = "teacher", hidden = 256, depth = 4 },
  student_optimizer = { lr = 1e-4, betas = { 0.9, 0.999 }, weight_decay = 0 },
  fake_optimizer = { lr = 1e-3, betas = { 0.9, 0.999 }, weight_decay = 0 },
  gan_optimizer = { lr = 1e-3, betas = { 0.9, 0.999 }, weight_decay = 0 },
}

------------------------------------------------------------------ checking
local function is_num(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end
local function int_in(v, path, lo, hi)
  if math.type(v) ~= "integer" or v < lo or v > hi then bad(path, "must be an integer in [%d, %d], got %s", lo, hi, tostring(v)) end
end
local function num_in(v, path, lo, hi)
  if not is_num(v) or v < lo or v > hi then bad(path, "must be a number in [%g, %g], got %s", lo, hi, tostring(v)) end
end
local function known(t, path, names)
  if type(t) ~= "table" then bad(path, "must be a table, got %s", type(t)) end
  for k in pairs(t) do
    if not names[k] then
      local list = {}
      for n in pairs(names) do list[#list + 1] = n end
      table.sort(list)
      bad(path, "has unknown key %s (known: %s)", tostring(k), table.concat(list, ", "))
    end
  end
end
local function set(list) local s = {} for _, k in ipairs(list) do s[k] = true end return s end

local function check_optimizer(o, path)
  known(o, path, set { "lr", "betas", "weight_decay", "clip_grad_norm", "schedule", "warmup", "min_lr_ratio" })
  if o.schedule ~= nil and o.schedule ~= "constant" and o.schedule ~= "cosine" then
    bad(path .. ".schedule", "must be \"constant\" or \"cosine\", got %s", tostring(o.schedule))
  end
  if o.warmup ~= nil then int_in(o.warmup, path .. ".warmup", 0, (1 << 31) - 1) end
  if o.min_lr_ratio ~= nil then num_in(o.min_lr_ratio, path .. ".min_lr_ratio", 0, 1) end
  num_in(o.lr, path .. ".lr", 1e-12, 10)
  if o.betas ~= nil then
    if type(o.betas) ~= "table" or #o.betas ~= 2 then bad(path .. ".betas", "must be a list of 2 numbers") end
    for i = 1, 2 do num_in(o.betas[i], ("%s.betas[%d]"):format(path, i), 0, 0.999999) end
  end
  if o.weight_decay ~= nil then num_in(o.weight_decay, path .. ".weight_decay", 0, 1e3) end
  if o.clip_grad_norm ~= nil then num_in(o.clip_grad_norm, path .. ".clip_grad_norm", 0, 1e30) end
end
local function check_net(n, path)
  known(n, path, set { "init", "hidden", "depth", "train_time_dist_type", "per_rung" })
  if n.per_rung ~= nil and type(n.per_rung) ~= "boolean" then bad(path .. ".per_rung", "must be true or false") end
  if n.train_time_dist_type ~= nil and n.train_time_dist_type ~= "uniform" and n.train_time_dist_type ~= "logitnormal"
      and n.train_time_dist_type ~= "lognormal" then
    bad(path .. ".train_time_dist_type", "must be uniform, logitnormal or lognormal, got %s", tostring(n.train_time_dist_type))
  end
  if n.init ~= "teacher" and n.init ~= "scratch" then bad(path .. ".init", "must be \"teacher\" or \"scratch\", got %s", tostring(n.init)) end
  int_in(n.hidden, path .. ".hidden", 1, 1 << 16)
  int_in(n.depth, path .. ".depth", 1, 1024)
end

-- Checks a completed config (top level and the distill block).
function Distill.check(cfg)
  known(cfg, "config", set { "seed", "data", "distill", "steps", "batch", "ema", "eval_n", "eval_repeats", "out", "log_every",
    "checkpoint_every", "plot_every", "network", "interface", "optimizer", "evals", "repa", "encoder" })
  int_in(cfg.seed, "seed", 0, math.maxinteger)
  int_in(cfg.steps, "steps", 1, (1 << 31) - 1)
  int_in(cfg.batch, "batch", 1, 1 << 24)
  int_in(cfg.eval_n, "eval_n", 2, 1 << 24)
  -- eval_repeats: nil = 4 sample sets on points, 1 on images (Distill.repeats)
  if cfg.eval_repeats ~= nil then int_in(cfg.eval_repeats, "eval_repeats", 1, 1000) end
  if cfg.encoder ~= nil and (type(cfg.encoder) ~= "string" or cfg.encoder == "") then bad("encoder", "must be a file path") end
  int_in(cfg.log_every, "log_every", 1, (1 << 31) - 1)
  int_in(cfg.checkpoint_every, "checkpoint_every", 0, (1 << 31) - 1)
  known(cfg.ema, "ema", set { "decay" })
  num_in(cfg.ema.decay, "ema.decay", 0, 1)
  if type(cfg.out) ~= "string" or cfg.out == "" then bad("out", "must be a non-empty string") end
  local d = cfg.distill
  known(d, "distill", set { "teacher", "teacher_config", "oracle", "teacher_eval", "student", "fake", "student_t_list",
    "sample_t_cfg", "guidance_scale", "fake_score_updates", "gan_loss_weight", "gan_feature_depth",
    "student_sample_type", "student_optimizer", "fake_optimizer", "gan_optimizer" })
  if (d.teacher == nil) == (d.oracle == nil) then
    bad("distill", "needs exactly one of teacher (a checkpoint path) and oracle ({means, stds, weights})")
  end
  if d.teacher ~= nil and (type(d.teacher) ~= "string" or d.teacher == "") then bad("distill.teacher", "must be a checkpoint path") end
  if d.teacher_config ~= nil and type(d.teacher_config) ~= "string" then bad("distill.teacher_config", "must be a config path") end
  if d.oracle ~= nil then known(d.oracle, "distill.oracle", set { "means", "stds", "weights" }) end
  -- one eval {sampler, num_sampling_steps, ...} or a list of them
  local te = d.teacher_eval
  if te ~= nil then
    if type(te) ~= "table" then bad("distill.teacher_eval", "must be an eval table or a list of them, got %s", type(te)) end
    for i, ev in ipairs(te) do
      if type(ev) ~= "table" then bad(("distill.teacher_eval[%d]"):format(i), "must be an eval table, got %s", type(ev)) end
    end
  end
  local tl = d.student_t_list
  if type(tl) ~= "table" or #tl < 1 or #tl > 64 then bad("distill.student_t_list", "must be a list of 1 to 64 times") end
  for i, t in ipairs(tl) do
    if not is_num(t) or t <= 0 or t > 1 or (i > 1 and t >= tl[i - 1]) then
      bad("distill.student_t_list", "must decrease within (0, 1], got [%d] = %s", i, tostring(t))
    end
  end
  known(d.sample_t_cfg, "distill.sample_t_cfg", set { "time_dist_type", "min_t", "max_t", "p_mean", "p_std", "shift" })
  if d.guidance_scale ~= nil then num_in(d.guidance_scale, "distill.guidance_scale", 0, 1e3) end
  int_in(d.fake_score_updates, "distill.fake_score_updates", 0, 1000)
  num_in(d.gan_loss_weight, "distill.gan_loss_weight", 0, 1e6)
  if d.gan_feature_depth ~= nil then int_in(d.gan_feature_depth, "distill.gan_feature_depth", 1, 1024) end
  if d.student_sample_type ~= "sde" and d.student_sample_type ~= "ode" then
    bad("distill.student_sample_type", "must be \"sde\" or \"ode\", got %s", tostring(d.student_sample_type))
  end
  check_net(d.student, "distill.student")
  check_net(d.fake, "distill.fake")
  for _, k in ipairs { "student_optimizer", "fake_optimizer", "gan_optimizer" } do check_optimizer(d[k], "distill." .. k) end
  if d.fake.per_rung and d.fake.init == "teacher" then
    bad("distill.fake.per_rung", "needs fake.init = \"scratch\" (a fake network labelled by rung)")
  end
  if d.oracle and (d.student.init == "teacher" or d.fake.init == "teacher") then
    bad("distill", "an oracle teacher has no weights to copy: set student.init and fake.init to \"scratch\"")
  end
  return cfg
end

-- cfg with the defaults filled in (tables one level deep, the distill block two)
function Distill.complete(cfg)
  local c = Config.copy(cfg)
  for k, v in pairs(defaults) do if c[k] == nil then c[k] = Config.copy(v) end end
  if type(c.ema) == "table" and c.ema.decay == nil then c.ema.decay = defaults.ema.decay end
  local d = c.distill
  if type(d) ~= "table" then bad("distill", "must be a table, got %s", type(d)) end
  Config.fill(d, distill_defaults)
  return c
end

------------------------------------------------------------------ building
local function absolute(p)
  if p:sub(1, 1) == "/" then return p end
  local cwd = os.getenv("PWD") or "."
  return (cwd:gsub("/$", "")) .. "/" .. p:gsub("^%./", "")
end

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Trains the teacher from its config when its checkpoint is missing
-- (opts: the run's; train_encoder lets an image teacher train its encoder).
function Distill.ensure_teacher(d, log, opts)
  if exists(d.teacher) then return end
  if not d.teacher_config then
    error(("moonflow.train: the teacher checkpoint %s is missing; train it first "
      .. "(scripts/moonflow train CONFIG out=%s) or give distill.teacher_config"):format(
      d.teacher, d.teacher:match("^(.*)/[^/]*$") or "."), 0)
  end
  local Train = require "moonflow.app.train"
  local tc = Config.load(d.teacher_config)
  tc.out = d.teacher:match("^(.*)/[^/]*$") or "."
  log(("the teacher checkpoint %s is missing: training it first (scripts/moonflow train %s out=%s)"):format(
    d.teacher, d.teacher_config, tc.out))
  local r = Train.run(tc, { train_encoder = opts and opts.train_encoder })
  log(Train.summary(r))
  if not exists(d.teacher) then
    error(("moonflow.train: training %s did not write %s"):format(d.teacher_config, d.teacher), 0)
  end
end

-- The teacher from a checkpoint: its config's network and interface over its
-- EMA weights. Returns teacher interface, teacher config, its network (a module).
function Distill.load_teacher(path)
  local Train = require "moonflow.app.train"
  local ck = mf.io.load(path)
  if type(ck.config) ~= "table" then error(("moonflow.train: %s holds no config"):format(path), 0) end
  if ck.config.distill then error(("moonflow.train: %s is a distillation run, not a teacher"):format(path), 0) end
  local tcfg = Config.check(Train.complete(ck.config))
  local rngs = mf.Rngs(tcfg.seed)
  local dim = Train.data_dim(tcfg) or 2
  local net, _, make = Train.build(tcfg, rngs, dim)
  local ema = mf.optim.EMA(net, { decay = tcfg.ema.decay })
  mf.io.load(path, { ema = ema })
  return make(ema.network), tcfg, ema.network
end

-- The data of an image teacher: Fashion-MNIST as the teacher saw it (cfg.data
-- may change its path), with its labels as the student's condition.
local function image_data(cfg, tcfg, rngs)
  local icfg = Config.copy(tcfg)
  if cfg.data ~= nil then
    if type(cfg.data) ~= "table" or cfg.data.name ~= "fashion_mnist" then
      bad("data", "must be {name = \"fashion_mnist\", ...} (or absent) for an image teacher, got %s",
        type(cfg.data) == "table" and tostring(cfg.data.name) or type(cfg.data))
    end
    icfg.data = Config.copy(cfg.data)
  end
  return Image.data_source(icfg, rngs), icfg
end

-- everything the run trains: {dmd, student, ema, teacher, teacher_evals, data,
-- shape, image (the teacher's config on images, with the data used), tnet, encoder}
function Distill.build(cfg, rngs)
  local Train = require "moonflow.app.train"
  local d = cfg.distill
  local teacher, tnet, tcfg, teacher_eval, data_cfg
  if d.oracle then
    local gm = mf.oracle.GaussianMixture(d.oracle)
    teacher = mf.interfaces.SiT { network = gm:network("sit"), t_shift_base = gm.dim }
    data_cfg = { name = "mixture", means = d.oracle.means, stds = d.oracle.stds, weights = d.oracle.weights }
    teacher_eval = { sampler = "Euler", num_sampling_steps = 50 }
  else
    teacher, tcfg, tnet = Distill.load_teacher(d.teacher)
    data_cfg = tcfg.data
    teacher_eval = tcfg.evals[1]
  end
  teacher_eval = d.teacher_eval or teacher_eval
  -- one eval, or a list of them
  local teacher_evals = type(teacher_eval[1]) == "table" and teacher_eval or { teacher_eval }
  local data, image
  if tcfg and Image.is_image(tcfg) then
    data, image = image_data(cfg, tcfg, rngs)
    if d.fake.per_rung then
      bad("distill.fake.per_rung", "labels the fake score by rung; an image teacher's data has class labels already")
    end
  else
    local dcfg = Config.copy(cfg.data or data_cfg)
    dcfg.rngs = rngs
    data = mf.data.toy(dcfg.name, dcfg)
  end
  local dim = data.dim or 2
  local function scratch(n, classes)
    if image then return Image.build_network(image, rngs) end
    return mf.nn.VelocityMLP { dim = dim, hidden = n.hidden, depth = n.depth, num_classes = classes, rngs = rngs }
  end
  local student = d.student.init == "teacher" and mf.distill.clone_network(tnet) or scratch(d.student)
  -- the fake score: the teacher's interface (options and, with init = "teacher",
  -- weights) or for an oracle a SiT, at fake.train_time_dist_type when given
  local o = { network = d.fake.init == "teacher" and mf.distill.clone_network(tnet)
    or scratch(d.fake, d.fake.per_rung and #d.student_t_list or nil), rngs = rngs }
  local fake
  if d.oracle then
    -- uniform times by default: the fake score is asked at every t of sample_t_cfg
    o.t_shift_base, o.train_time_dist_type = dim, d.fake.train_time_dist_type or "uniform"
    fake = mf.interfaces.SiT(o)
  else
    local cls = getmetatable(teacher)
    for k in pairs(cls.DEFAULTS) do o[k] = teacher[k] end
    o.train_time_dist_type = d.fake.train_time_dist_type or o.train_time_dist_type
    fake = cls.new(o)
  end
  -- an optimizer's lr schedule runs over its own steps: `per_step` of them per training step
  local function opt(o, per_step)
    local lr = o.lr
    if o.schedule == "cosine" then
      lr = mf.optim.lr.cosine(o.lr, cfg.steps * per_step, { warmup = o.warmup, min_lr = o.lr * (o.min_lr_ratio or 0) })
    elseif (o.warmup or 0) > 0 then
      lr = mf.optim.lr.warmup(o.lr, o.warmup)
    end
    return { lr = lr, betas = o.betas, weight_decay = o.weight_decay, max_grad_norm = o.clip_grad_norm }
  end
  local k = math.max(d.fake_score_updates, 1)
  local dmd = mf.distill.DMD2 {
    teacher = teacher, student = student, fake = fake, fake_init = d.fake.init, rngs = rngs,
    student_t_list = d.student_t_list, sample_t_cfg = d.sample_t_cfg, guidance_scale = d.guidance_scale,
    fake_score_updates = d.fake_score_updates, gan_loss_weight = d.gan_loss_weight,
    gan_feature_depth = d.gan_feature_depth, student_sample_type = d.student_sample_type,
    fake_per_rung = d.fake.per_rung,
    optimizer = opt(d.student_optimizer, 1), fake_optimizer = opt(d.fake_optimizer, k),
    gan_optimizer = opt(d.gan_optimizer, k),
    shape = data.shape or { dim },
  }
  local ema = mf.optim.EMA(student, { decay = cfg.ema.decay })
  return { dmd = dmd, student = student, ema = ema, teacher = teacher, teacher_evals = teacher_evals,
    data = data, shape = data.shape or { dim }, train = Train, image = image, tnet = tnet,
    encoder = image and (cfg.encoder or image.encoder) or nil }
end

-- sample sets per evaluation: eval_repeats, else 4 on points and 1 on images
function Distill.repeats(cfg, b) return cfg.eval_repeats or (b.image and 1 or 4) end

-- the checkpoint's entries (targets when loading)
local function entries(b, rngs)
  local e = { model = b.student, ema = b.ema, optim = b.dmd.optimizer, fake = b.dmd.fake.network,
    fake_optim = b.dmd.fake_optimizer, rngs = rngs }
  if b.dmd.gan_head then e.gan_head, e.gan_optim = b.dmd.gan_head, b.dmd.gan_optimizer end
  return e
end

------------------------------------------------------------------ evaluating
local function timed(fn)
  mf.synchronize()
  local t0 = mf.clock()
  local x, labels = fn()
  mf.synchronize()
  return x, labels, mf.clock() - t0
end

-- the student's step counts: 1 and #student_t_list
function Distill.step_counts(cfg)
  local K = #cfg.distill.student_t_list
  return K > 1 and { 1, K } or { 1 }
end

function Distill.student_name(k) return ("student_%dstep%s"):format(k, k > 1 and "s" or "") end

-- n samples of the student `net` at k steps; on images with labels cycling
-- through the classes (as Image.sample's), in chunks of 500: x, labels
function Distill.draw_student(b, rng, n, k, net)
  local classes = b.image and net.num_classes
  if not classes then return b.dmd:sample(rng, n, { steps = k, network = net }), nil end
  local labels = Image.cycle_labels(n, classes)
  local parts = {}
  for i = 1, n, 500 do
    local m = math.min(500, n - i + 1)
    parts[#parts + 1] = b.dmd:sample(rng, m, { steps = k, network = net, cond = { y = labels:narrow(1, i, m):contiguous() } })
  end
  return #parts == 1 and parts[1] or mf.cat(parts, 1), labels
end

-- a teacher eval's name and its draw of n samples (x, labels)
local function teacher_draw(b, ev, rngs, n)
  local kind = ev.sampler or "Euler"
  local name = ev.name or ("teacher_%s_%dsteps"):format(kind:lower(), ev.num_sampling_steps or 0)
  if b.image then
    if ev.guidance_scale and ev.guidance_scale ~= 1 and not ev.name then name = name .. ("_cfg%g"):format(ev.guidance_scale) end
    return name, function() return Image.sample(ev, b.teacher, b.tnet, rngs, n) end
  end
  local o = Config.copy(ev)
  o.sampler, o.picture, o.name = nil, nil, nil
  local sampler = mf.samplers[kind](o)
  local full = { n, table.unpack(b.shape) }
  return name, function()
    local noise = rngs.sample:normal(full)
    return mf.no_grad(function() return sampler:sample(rngs.sample, b.teacher, noise) end)
  end
end

-- The teacher with its sampler(s), the student (EMA) at 1 and #student_t_list
-- steps: {who, name, steps, seconds, picture, n} with, on points, energy (the
-- mean over `repeats` sample sets of eval_n, each against fresh data: one
-- set's distance scatters by about half the floor around its mean), on
-- images fd, floor and accuracy (means over the sets, in the encoder's
-- features; none without an encoder); seconds is the mean time of one set's
-- sampling. opts: n, repeats, counts (the student's), teacher (false: none),
-- network (the student's; default the EMA's), picture(name) -> path.
function Distill.evaluate(cfg, b, rngs, out, opts)
  opts = opts or {}
  local n, data, reps = opts.n or cfg.eval_n, b.data, opts.repeats or Distill.repeats(cfg, b)
  local reference = not b.image and data:batch(n) or nil
  local picture = opts.picture or function(name) return out .. "/samples_" .. name .. ".png" end
  local data_dir = b.image and (b.image.data.path or b.image.data.dir)
  local results = {}
  local function record(who, name, steps, draw)
    local r = { who = who, name = name, steps = steps, seconds = 0, n = n, picture = picture(name) }
    local sums = {}
    for i = 1, reps do
      local x, labels, sec = timed(draw)
      r.seconds = r.seconds + sec / reps
      if b.image then
        if i == 1 then Image.grid(r.picture, x, b.tnet.num_classes or 1, 10, name) end
        for key, v in pairs(Image.measure(x, labels, b.encoder, n, data_dir)) do sums[key] = (sums[key] or 0) + v / reps end
      else
        if i == 1 then mf.plot.scatter(r.picture, x, { reference = reference, title = name }) end
        sums.energy = (sums.energy or 0) + mf.metrics.energy_distance(x, (data:batch(n))) / reps
      end
      r.samples, r.labels = r.samples or x, r.labels or labels
    end
    for key, v in pairs(sums) do r[key] = v end
    results[#results + 1] = r
    return r
  end
  if opts.teacher ~= false then
    for _, ev in ipairs(b.teacher_evals) do
      local name, draw = teacher_draw(b, ev, rngs, n)
      record("teacher", name, ev.num_sampling_steps or 0, draw)
    end
  end
  local net = opts.network or b.ema.network
  for _, k in ipairs(opts.counts or Distill.step_counts(cfg)) do
    record("student", Distill.student_name(k), k, function() return Distill.draw_student(b, rngs.sample, n, k, net) end)
  end
  return results
end

------------------------------------------------------------------ running
local HEADER = "step,loss,dm_loss,fake_score_loss,time"

-- Runs a distillation config; opts as Train.run (resume, overwrite, started, log).
function Distill.run(cfg, opts)
  opts = opts or {}
  local say = opts.log or print
  cfg = Distill.check(Distill.complete(cfg))
  local d = cfg.distill
  if d.teacher then
    d.teacher = absolute(d.teacher)
    if d.teacher_config then d.teacher_config = absolute(d.teacher_config) end
    Distill.ensure_teacher(d, say, opts)
  end
  if cfg.encoder then cfg.encoder = absolute(cfg.encoder) end
  if type(cfg.data) == "table" then
    for _, k in ipairs { "path", "dir" } do
      if type(cfg.data[k]) == "string" then cfg.data[k] = absolute(cfg.data[k]) end
    end
  end
  local Train = require "moonflow.app.train"
  local out = cfg.out
  local rngs = mf.Rngs(cfg.seed)
  local b = Distill.build(cfg, rngs)
  -- the image metrics' encoder, checked (or trained) before any training
  if b.encoder then Image.ensure_encoder({ encoder = b.encoder }, opts) end
  local total = cfg.steps
  local start, window = 0, nil
  if opts.resume then
    local ck = mf.io.load(opts.resume, entries(b, rngs))
    start = math.tointeger(ck.step)
    if not start or start < 0 or start > total then
      error(("moonflow.train: %s is at step %s, outside 0..steps=%d"):format(opts.resume, tostring(ck.step), total), 0)
    end
    window = Progress.check_state(ck.progress, opts.resume)
    if ck.data ~= nil and b.data.set_state then b.data:set_state(ck.data) end
  end
  local lock, log = Train.open_folder(cfg, opts, start, HEADER)
  local log_path = out .. "/log.csv"
  local progress = Progress.new { total = total, every = cfg.log_every, start = start, state = window }
  local ckpt = out .. "/checkpoint.safetensors"
  local function save(step, elapsed)
    local e = entries(b, rngs)
    e.step, e.config, e.progress = step, Config.copy(cfg), progress:state(elapsed)
    -- an image source's epoch order and position (the toy ones draw from rngs)
    if b.image and b.data.get_state then e.data = b.data:get_state() end
    mf.io.save(ckpt, e)
  end
  local last
  for step = start + 1, total do
    -- images: the student draws with the real batch's labels
    local x, y = b.data:batch(cfg.batch)
    local l = b.dmd:step(b.image and { x = x, y = y } or x)
    b.ema:update()
    last = l
    local shown = progress:update(step, l.loss)
    local elapsed = progress:elapsed()
    if step == total or (cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0) then save(step, elapsed) end
    if shown then
      log:write(("%d,%.7g,%.7g,%.7g,%.3f\n"):format(step, shown, l.dm_loss:item(),
        l.fake_score_loss and l.fake_score_loss:item() or 0 / 0, elapsed))
      log:flush()
    end
  end
  log:close()
  local losses = {}
  for line in io.lines(log_path) do
    local st, v = line:match("^(%d+),([^,]+)")
    if st then losses[#losses + 1] = { tonumber(st), tonumber(v) } end
  end
  local train_time = progress:elapsed()
  local results = Distill.evaluate(cfg, b, rngs, out)
  local floor = not b.image and mf.metrics.energy_floor(b.data, cfg.eval_n) or nil
  mf.plot.curve(out .. "/loss.png", losses, { title = "generator loss", xlabel = "step", ylabel = "loss" })
  lock:unlock()
  return {
    distill = true, out = out, time = train_time, final_loss = losses[#losses] and losses[#losses][2],
    results = results, floor = floor, repeats = Distill.repeats(cfg, b), eval_n = cfg.eval_n, checkpoint = ckpt,
    log = log_path, config = out .. "/config.lua", loss_picture = out .. "/loss.png", last = last,
    image = b.image ~= nil, guidance_scale = d.guidance_scale,
  }
end

-- A distillation checkpoint, rebuilt and loaded (for sampling it, e.g. from
-- `moonflow sample`): returns the built run (b.dmd, b.ema, ...) and its config.
-- Draw with b.dmd:sample(rng, n, {steps = k, network = b.ema.network}).
function Distill.load(path)
  local ck = mf.io.load(path)
  if type(ck.config) ~= "table" or type(ck.config.distill) ~= "table" then
    error(("moonflow.distill: %s is not a distillation checkpoint (no distill block in its config)"):format(path), 0)
  end
  local cfg = Distill.check(Distill.complete(ck.config))
  local t = cfg.distill.teacher
  if t and not exists(t) then
    error(("moonflow.distill: %s was distilled from %s, which is gone: the student's network is rebuilt "
      .. "from the teacher's checkpoint (its config and architecture); put it back or retrain it"):format(path, t), 0)
  end
  local rngs = mf.Rngs(cfg.seed)
  local b = Distill.build(cfg, rngs)
  mf.io.load(path, entries(b, rngs))
  return b, cfg
end

-- One result's line: on points energy distance beside the floor; on images
-- FD beside its floor and (teacher_fd given) the teacher's, class accuracy;
-- then the sampling time.
function Distill.line(e, floor, teacher_fd)
  local s
  if e.energy then
    s = ("  %-26s energy distance %.5f  (floor %.5f, ratio %.2f)"):format(e.name, e.energy, floor, e.energy / floor)
  elseif e.fd then
    s = ("  %-26s FD %.3f  (floor %.3f"):format(e.name, e.fd, e.floor)
    if teacher_fd and e.who ~= "teacher" then s = s .. (", %.2fx the teacher's"):format(e.fd / teacher_fd) end
    s = s .. ")"
    if e.accuracy then s = s .. ("  class accuracy %.1f%%"):format(100 * e.accuracy) end
  else
    s = ("  %-26s %d samples (no encoder: no FD)"):format(e.name, e.n or 0)
  end
  return s .. ("  sampling %.3f s"):format(e.seconds)
end

-- The summary printed at the end of a distillation run.
function Distill.summary(r)
  local lines = { ("distilled in %s, final generator loss %.5f"):format(Progress.hms(r.time), r.final_loss or 0 / 0) }
  local teacher_fd
  for _, e in ipairs(r.results) do if e.who == "teacher" and e.fd and not teacher_fd then teacher_fd = e.fd end end
  for _, e in ipairs(r.results) do lines[#lines + 1] = Distill.line(e, r.floor, teacher_fd) end
  if r.image then
    lines[#lines + 1] = ("  (%d samples a set, labels cycling through the classes; the student trained against the "
      .. "teacher at guidance %g)"):format(r.eval_n, r.guidance_scale or 1)
  end
  if r.repeats and r.repeats > 1 then
    lines[#lines + 1] = ("  (%s: means over %d sample sets of %d; sampling: the time of one set)"):format(
      r.image and "FD and accuracy" or "energy distances", r.repeats, r.eval_n)
  end
  lines[#lines + 1] = "wrote:"
  for _, p in ipairs { r.config, r.log, r.checkpoint, r.loss_picture } do lines[#lines + 1] = "  " .. p end
  for _, e in ipairs(r.results) do lines[#lines + 1] = "  " .. e.picture end
  return table.concat(lines, "\n")
end

return Distill
