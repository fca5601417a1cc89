-- The main job: build data, network, interface, optimizer and EMA from a
-- config table, train with progress and checkpoints, then sample, measure
-- and draw. `scripts/moonflow train CONFIG.lua [key=value ...]` calls run().
local mf = require "moonflow"
local Config = require "moonflow.config"
local Progress = require "moonflow.progress"

local Train = {}

local defaults = {
  seed = 0,
  data = { name = "two_moons" },
  network = { hidden = 256, depth = 4 },
  interface = { kind = "SiT", train_time_dist_type = "logitnormal" },
  optimizer = { kind = "AdamW", lr = 1e-3, weight_decay = 0, betas = { 0.9, 0.999 },
    schedule = "cosine", warmup = 100, clip_grad_norm = 1.0 },
  ema = { decay = 0.999 },
  steps = 2000,
  batch = 512,
  evals = { { sampler = "Euler", num_sampling_steps = 50 } },
  eval_n = 2000,
  out = "runs/run",
  log_every = 100,
  checkpoint_every = 500,
  plot_every = 0,
}

-- cfg with defaults filled in (nested one level)
function Train.complete(cfg)
  local c = Config.copy(cfg)
  for k, v in pairs(defaults) do
    if c[k] == nil then
      c[k] = Config.copy(v)
    elseif type(v) == "table" and type(c[k]) == "table" and #v == 0 then
      for kk, vv in pairs(v) do if c[k][kk] == nil then c[k][kk] = Config.copy(vv) end end
    end
  end
  return c
end

------------------------------------------------------------------ building
function Train.data_source(cfg, rngs)
  local d = Config.copy(cfg.data)
  d.rngs = rngs
  return mf.data.toy(d.name, d)
end

-- a fixed nonlinear feature map of 2-D x, REPA's alignment target
function Train.repa_features(x, dim)
  local parts = {}
  local a = x:narrow(2, 1, 1)
  local b = x:narrow(2, 2, 1)
  for k = 1, dim // 4 do
    parts[#parts + 1] = (a * k):sin()
    parts[#parts + 1] = (b * k):cos()
    parts[#parts + 1] = (a * b * (0.5 * k)):tanh()
    parts[#parts + 1] = ((a + b) * k):sin()
  end
  return mf.cat(parts, 2)
end

local interface_kinds = { SiT = true, EDM = true, MeanFlow = true }

-- network, interface (the thing with :loss), model interface builder
function Train.build(cfg, rngs, dim)
  local ic = cfg.interface
  local kind = ic.kind or "SiT"
  if not interface_kinds[kind] then
    error(("moonflow.train: unknown interface.kind %q (SiT, EDM, MeanFlow)"):format(tostring(kind)), 0)
  end
  local ncfg = Config.copy(cfg.network)
  ncfg.dim = ncfg.dim or dim
  ncfg.rngs = rngs
  if kind == "MeanFlow" then
    if ncfg.use_dt == nil then ncfg.use_dt = true end
    -- MeanFlow's target differentiates u in t: DiT's embedding scale (1000)
    -- makes du/dt huge and training collapses (scripts/configs/checkerboard_meanflow.lua)
    if ncfg.t_scale == nil then ncfg.t_scale = 1 end
  end
  local net = mf.nn.VelocityMLP(ncfg)
  local function make(network)
    local o = Config.copy(ic)
    o.kind = nil
    o.network = network
    o.rngs = rngs
    return mf.interfaces[kind](o)
  end
  local iface = make(net)
  local trainer = iface
  if cfg.repa then
    local r = Config.copy(cfg.repa)
    r.interface = iface
    r.rngs = rngs
    trainer = mf.interfaces.REPA(r)
  end
  return net, trainer, make
end

local function lr_at(ocfg, step, total)
  local lr, warm = ocfg.lr, ocfg.warmup or 0
  if warm > 0 and step <= warm then return lr * step / warm end
  if ocfg.schedule == "cosine" then
    local p = (step - warm) / math.max(1, total - warm)
    return lr * (ocfg.min_lr_ratio or 0.0) + lr * (1 - (ocfg.min_lr_ratio or 0.0)) * 0.5 * (1 + math.cos(math.pi * p))
  end
  return lr
end
Train.lr_at = lr_at

------------------------------------------------------------------- running
local function mkdir(path) os.execute(("mkdir -p %q"):format(path)) end
local write_file = mf.core.write_file -- temp file, fsync, rename

-- Samples with each configured sampler from the EMA model; returns a list of
-- {name, samples, energy, picture}.
function Train.evaluate(cfg, make_model, ema_net, data, rngs, out, opts)
  opts = opts or {}
  local results = {}
  local n = opts.n or cfg.eval_n
  local model = make_model(ema_net)
  local reference = data:batch(n)
  for i, ev in ipairs(opts.evals or cfg.evals) do
    local kind = ev.sampler or "Euler"
    local sopts = Config.copy(ev)
    sopts.sampler, sopts.picture, sopts.name = nil, nil, nil
    local sampler = mf.samplers[kind](sopts)
    local noise = rngs.sample:normal({ n, data.dim or 2 })
    local x = mf.no_grad(function() return sampler:sample(rngs.sample, model, noise) end)
    local fresh = data:batch(n)
    local ed = mf.metrics.energy_distance(x, fresh)
    local name = ev.name or ("%s_%dsteps"):format(kind:lower(), ev.num_sampling_steps or 0)
    -- ev.picture is a file name inside `out`, or a path of its own without `out`
    local pic = ev.picture or ("samples_" .. name .. ".png")
    if out then pic = out .. "/" .. pic end
    mf.plot.scatter(pic, x, { reference = reference, title = name })
    results[#results + 1] = { name = name, samples = x, energy = ed, picture = pic }
  end
  return results
end

-- Trains per cfg (a completed config); opts.resume = checkpoint path.
function Train.run(cfg, opts)
  opts = opts or {}
  cfg = Train.complete(cfg)
  local out = cfg.out
  mkdir(out)
  write_file(out .. "/config.lua", "return " .. Config.render(cfg) .. "\n")
  local rngs = mf.Rngs(cfg.seed)
  local data = Train.data_source(cfg, rngs)
  local dim = data.dim or 2
  local net, trainer, make_model = Train.build(cfg, rngs, dim)
  local ocfg, total = cfg.optimizer, cfg.steps
  local function optimizer(module)
    return mf.optim.AdamW(module, {
      lr = function(step) return lr_at(ocfg, step, total) end,
      weight_decay = ocfg.weight_decay, betas = ocfg.betas, max_grad_norm = ocfg.clip_grad_norm,
    })
  end
  local opt = optimizer(net)
  -- REPA's projector is its own module with its own flat buffer
  local opt_proj = cfg.repa and optimizer(trainer.projector) or nil
  local ema = mf.optim.EMA(net, { decay = cfg.ema.decay })
  local start = 0
  local log_path = out .. "/log.csv"
  if opts.resume then
    local targets = { model = net, ema = ema, optim = opt, rngs = rngs }
    if opt_proj then targets.projector, targets.optim_projector = trainer.projector, opt_proj end
    local ck = mf.io.load(opts.resume, targets)
    start = ck.step
    -- keep the log lines up to the checkpoint, so the CSV reads as one run
    local kept = { "step,loss,lr,time" }
    local f = io.open(log_path)
    if f then
      for line in f:lines() do
        local s = tonumber(line:match("^(%d+),"))
        if s and s <= start then kept[#kept + 1] = line end
      end
      f:close()
    end
    write_file(log_path, table.concat(kept, "\n") .. "\n")
  else
    write_file(log_path, "step,loss,lr,time\n")
  end
  local log = assert(io.open(log_path, "a"))
  local progress = Progress.new { total = cfg.steps, every = cfg.log_every, start = start }
  local losses = {}
  local ckpt = out .. "/checkpoint.safetensors"
  local function save(step)
    local entries = { model = net, ema = ema, optim = opt, step = step, rngs = rngs,
      config = Config.render(cfg) }
    if opt_proj then entries.projector, entries.optim_projector = trainer.projector, opt_proj end
    mf.io.save(ckpt, entries)
  end
  for step = start + 1, cfg.steps do
    local lr = lr_at(ocfg, step, total)
    local x = data:batch(cfg.batch)
    local res
    if cfg.repa then
      res = trainer:loss(x, Train.repa_features(x, cfg.repa.feature_dim))
    else
      res = trainer:loss(x)
    end
    local loss = res.loss:mean()
    opt:zero_grad()
    if opt_proj then opt_proj:zero_grad() end
    loss:backward()
    opt:step()
    if opt_proj then opt_proj:step() end
    ema:update()
    local shown = progress:update(step, loss)
    if shown then
      losses[#losses + 1] = { step, shown }
      log:write(("%d,%.7g,%.7g,%.3f\n"):format(step, shown, lr, progress:elapsed()))
      log:flush()
    end
    if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0 then save(step) end
    if cfg.plot_every > 0 and step % cfg.plot_every == 0 then
      Train.evaluate(cfg, make_model, ema.network, data, rngs, out,
        { evals = { cfg.evals[1] }, n = math.min(cfg.eval_n, 1000) })
    end
  end
  log:close()
  save(cfg.steps)
  -- the curve from the whole log, so a resumed run draws all of it
  losses = {}
  for line in io.lines(log_path) do
    local st, l = line:match("^(%d+),([^,]+)")
    if st then losses[#losses + 1] = { tonumber(st), tonumber(l) } end
  end
  local train_time = progress:elapsed()
  local results = Train.evaluate(cfg, make_model, ema.network, data, rngs, out)
  local floor = mf.metrics.energy_floor(data, cfg.eval_n)
  mf.plot.curve(out .. "/loss.png", losses, { title = "training loss", xlabel = "step", ylabel = "loss" })
  return {
    out = out, time = train_time, final_loss = losses[#losses] and losses[#losses][2],
    results = results, floor = floor, checkpoint = ckpt, log = log_path, config = out .. "/config.lua",
    loss_picture = out .. "/loss.png",
  }
end

-- The summary lines printed at the end of a run.
function Train.summary(r)
  local lines = {}
  lines[#lines + 1] = ("trained in %s, final loss %.5f"):format(Progress.hms(r.time), r.final_loss or 0 / 0)
  for _, e in ipairs(r.results) do
    lines[#lines + 1] = ("  %-22s energy distance %.5f  (floor %.5f, ratio %.2f)"):format(
      e.name, e.energy, r.floor, e.energy / r.floor)
  end
  lines[#lines + 1] = "wrote:"
  for _, p in ipairs { r.config, r.log, r.checkpoint, r.loss_picture } do lines[#lines + 1] = "  " .. p end
  for _, e in ipairs(r.results) do lines[#lines + 1] = "  " .. e.picture end
  return table.concat(lines, "\n")
end

return Train
