-- The main job: build data, network, interface, optimizer and EMA from a
-- config table, train with progress and checkpoints, then sample, measure
-- and draw. `scripts/moonflow train CONFIG.lua [key=value ...]` calls run().
local mf = require "moonflow"
local Config = require "moonflow.app.config"
local Progress = require "moonflow.app.progress"
local Image = require "moonflow.app.image"
local DistTrain = require "moonflow.app.dist_train"

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
function Train.complete(cfg) return Config.fill(Config.copy(cfg), defaults) end

------------------------------------------------------------------ building
function Train.data_source(cfg, rngs)
  if Image.is_image(cfg) then return Image.data_source(cfg, rngs) end
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

-- The VelocityMLP options a config gives for data of dimension dim.
function Train.network_options(cfg, dim)
  local ncfg = Config.copy(cfg.network)
  ncfg.dim = ncfg.dim or dim
  if (cfg.interface.kind or "SiT") == "MeanFlow" then
    if ncfg.use_dt == nil then ncfg.use_dt = true end
    -- MeanFlow's target differentiates u in t: DiT's embedding scale (1000)
    -- makes du/dt huge and training collapses (scripts/configs/checkerboard_meanflow.lua)
    if ncfg.t_scale == nil then ncfg.t_scale = 1 end
  end
  return ncfg
end

-- The shapes of the parameters of the network a config describes, computed
-- without building it (VelocityMLP: Linear weights {out, in} and biases,
-- LayerNorm weight and bias, timestep embeddings Linear(freq, H), Linear(H, H),
-- a label table of num_classes + 1 rows).
function Train.param_shapes(cfg, dim)
  if Image.is_image(cfg) then return Image.param_shapes(cfg) end
  local n = Train.network_options(cfg, dim)
  local D, H, F = n.dim, n.hidden or 256, n.freq_dim or 256
  local s = {}
  local function linear(i, o) s[#s + 1] = { o, i }; s[#s + 1] = { o } end
  local function norm() s[#s + 1] = { H }; s[#s + 1] = { H } end
  local function embed() linear(F, H); linear(H, H) end
  linear(D, H)
  embed()
  if n.num_classes then s[#s + 1] = { n.num_classes + 1, H } end
  if n.use_dt then embed() end
  for _ = 1, n.depth or 4 do norm(); linear(H, H) end
  norm()
  linear(H, D)
  return s
end

-- The data's dimension when the config alone tells it (nil: build the source).
function Train.data_dim(cfg)
  if cfg.network.dim then return cfg.network.dim end
  local name = cfg.data.name
  for _, t in ipairs(mf.data.toy_sets) do if name == t then return 2 end end
  local m = cfg.data.means
  if (name == "mixture" or name == "gaussian_mixture") and type(m) == "table" and type(m[1]) == "table" then
    return #m[1]
  end
  return nil
end

-- network, interface (the thing with :loss), model interface builder
function Train.build(cfg, rngs, dim)
  local ic = cfg.interface
  local kind = ic.kind or "SiT"
  if not interface_kinds[kind] then
    error(("moonflow.train: unknown interface.kind %q (SiT, EDM, MeanFlow)"):format(tostring(kind)), 0)
  end
  local net
  if Image.is_image(cfg) then
    net = Image.build_network(cfg, rngs)
  else
    local ncfg = Train.network_options(cfg, dim)
    ncfg.rngs = rngs
    net = mf.nn.VelocityMLP(ncfg)
  end
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
    -- images align with the encoder's tokens: their width is the encoder's
    if Image.is_image(cfg) then r.feature_dim = r.feature_dim or Image.encoder(cfg.encoder).hidden_size end
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
local core = mf.core
local write_file = core.write_file -- temp file <path>.tmp.<pid>, fsync, rename

-- Takes the run folder: creates it, locks it for the life of this run (an
-- flock the OS drops when the process dies) and removes the temporary files
-- of writers that died mid-write. Returns the lock handle.
function Train.take_folder(out)
  core.fs_mkdir_p(out)
  local lock, pid = core.fs_lock(out .. "/.moonflow.lock")
  if not lock then
    error(("moonflow.train: %s is in use by another run%s; wait for it or choose another out="):format(
      out, pid and (" (pid %d)"):format(pid) or ""), 0)
  end
  for _, name in ipairs(core.fs_list(out)) do
    local pid_s = name:match("%.tmp%.(%d+)$")
    local p = pid_s and math.tointeger(tonumber(pid_s))
    if p and p > 0 and p <= 0x7fffffff and p ~= core.fs_getpid() and not core.fs_pid_alive(p) then
      os.remove(out .. "/" .. name)
    end
  end
  return lock
end

-- The files of an earlier run in folder `out` ("config.lua, log.csv"), or nil.
function Train.earlier_run(out)
  local names, have = { "config.lua", "log.csv", "checkpoint.safetensors" }, {}
  for _, n in ipairs(names) do
    local f = io.open(out .. "/" .. n, "rb")
    if f then
      f:close()
      have[#have + 1] = n
    end
  end
  return #have > 0 and table.concat(have, ", ") or nil
end

-- Opens the run folder of cfg.out for a run starting at step `start`: takes
-- it, refuses an earlier run there unless opts.overwrite or opts.resume
-- continues this folder's own checkpoint, calls opts.started(cfg), writes
-- config.lua and the log (its rows up to `start` kept; header given).
-- Returns the lock and the log open for appending.
function Train.open_folder(cfg, opts, start, header)
  local out = cfg.out
  local lock = Train.take_folder(out)
  local continues = opts.resume and Train.same_folder(opts.resume:match("^(.*)/[^/]*$") or ".", out)
  if not continues and not opts.overwrite then
    local earlier = Train.earlier_run(out)
    if earlier then
      lock:unlock()
      error(("moonflow.train: %s holds an earlier run (%s); pass --overwrite to replace it, "
        .. "resume=%s/checkpoint.safetensors to continue it, or choose another out="):format(out, earlier, out), 0)
    end
  end
  if opts.started then opts.started(cfg) end
  write_file(out .. "/config.lua", "return " .. Config.render(cfg) .. "\n")
  return lock, Train.log_file(out .. "/log.csv", start, cfg.log_every, cfg.steps, header)
end

-- Whether two folder names name the same folder, as far as their absolute
-- spellings tell (".", "a/./b", "a//b" and trailing "/" are normalized).
local function absolute(p)
  local cwd = os.getenv("PWD") or ""
  if p:sub(1, 1) ~= "/" then p = cwd .. "/" .. p end
  local parts = {}
  for part in p:gmatch("[^/]+") do
    if part == ".." then parts[#parts] = nil elseif part ~= "." then parts[#parts + 1] = part end
  end
  return "/" .. table.concat(parts, "/")
end
function Train.same_folder(a, b) return absolute(a) == absolute(b) end

-- Data paths made absolute (from the current folder, $PWD), so that the
-- checkpoint's config finds its data from any folder.
function Train.absolute_paths(cfg)
  local cwd = os.getenv("PWD")
  for _, k in ipairs { "path", "labels", "dir" } do
    local p = cfg.data[k]
    if type(p) == "string" and p:sub(1, 1) ~= "/" and cwd and cwd:sub(1, 1) == "/" then
      p = p:gsub("^%./", "")
      cfg.data[k] = (cwd:gsub("/$", "")) .. "/" .. p
    end
  end
  local e = cfg.encoder
  if type(e) == "string" and e:sub(1, 1) ~= "/" and cwd and cwd:sub(1, 1) == "/" then
    cfg.encoder = (cwd:gsub("/$", "")) .. "/" .. e:gsub("^%./", "")
  end
  return cfg
end

-- Samples with each configured sampler from the EMA model; returns a list of
-- {name, samples, energy, picture}. opts: evals, n, callback (the samplers').
function Train.evaluate(cfg, make_model, ema_net, data, rngs, out, opts)
  opts = opts or {}
  local dist = opts.dist -- under mpirun: sampling sharded over ranks (app/dist_train.lua)
  local reshard = dist and dist:pause_streams(rngs)
  local results = {}
  local n = opts.n or cfg.eval_n
  local model = make_model(ema_net)
  local reference = data:batch(n)
  for i, ev in ipairs(opts.evals or cfg.evals) do
    local kind = ev.sampler or "Euler"
    local sopts = Config.copy(ev)
    sopts.sampler, sopts.picture, sopts.name = nil, nil, nil
    local sampler = mf.samplers[kind](sopts)
    local function draw(count)
      local noise = rngs.sample:normal({ count, data.dim or 2 })
      return mf.no_grad(function()
        return sampler:sample(rngs.sample, model, noise, opts.callback and { callback = opts.callback } or nil)
      end)
    end
    local x = dist and dist:sharded_rows(n, rngs.sample, draw) or draw(n)
    local fresh = data:batch(n)
    local ed = mf.metrics.energy_distance(x, fresh)
    local name = ev.name or ("%s_%dsteps"):format(kind:lower(), ev.num_sampling_steps or 0)
    -- ev.picture is a file name inside `out`, or a path of its own without `out`
    local pic = ev.picture or ("samples_" .. name .. ".png")
    if out then pic = out .. "/" .. pic end
    if not dist or dist.main then mf.plot.scatter(pic, x, { reference = reference, title = name }) end
    results[#results + 1] = { name = name, samples = x, energy = ed, picture = pic }
  end
  if reshard then reshard() end
  return results
end

-- The lines of an earlier log.csv to keep when resuming at step `start`:
-- the window ends up to it (and a run's last step), so the file reads as one run.
local function kept_log(path, start, every, total, header)
  local kept = { header }
  local f = io.open(path)
  if f then
    for line in f:lines() do
      local s = math.tointeger(tonumber(line:match("^(%d+),")))
      if s and s <= start and (s % every == 0 or s == total) then kept[#kept + 1] = line end
    end
    f:close()
  end
  return table.concat(kept, "\n") .. "\n"
end

-- A CSV log at path for a run resuming after step `start` (0: a new run):
-- its kept rows (kept_log) or just the header, then open for appending.
function Train.log_file(path, start, every, total, header)
  write_file(path, start > 0 and kept_log(path, start, every, total, header) or header .. "\n")
  return assert(io.open(path, "a"))
end

-- REPA's diffusion and alignment losses, averaged on the device over each
-- log window and written to parts.csv (step,diffusion_loss,repa_loss) at the
-- log steps; the window's sums go into checkpoints so a resume continues it.
local Parts = {}
Parts.__index = Parts
Train.Parts = Parts
local parts_header = "step,diffusion_loss,repa_loss"

-- dist (under mpirun): the window sums are means over the ranks' shards (so
-- every rank holds the checkpointed sums), and only rank 0 writes.
function Parts.new(path, start, cfg, st, dist)
  local self = setmetatable({ path = path, count = 0, every = cfg.log_every, dist = dist }, Parts)
  if st and math.type(st.count) == "integer" and st.count > 0 and mf.autograd.is_tensor(st.d)
      and mf.autograd.is_tensor(st.r) then
    self.d, self.r, self.count = st.d, st.r, st.count
  end
  if dist and not dist.main then return self end
  self.file = Train.log_file(path, start, cfg.log_every, cfg.steps, parts_header)
  return self
end

-- windows as Progress's: they end at multiples of log_every; the last step
-- writes its partial window and keeps it (a resume goes on with it)
function Parts:update(step, res, shown)
  local d, r = res.diffusion_loss:mean():detach(), res.repa_loss:mean():detach()
  if self.dist then -- equal shards: the batch's mean is the mean of the ranks' means
    local D = require "moonflow.dist"
    d, r = D.all_reduce(d:clone(), "mean"), D.all_reduce(r:clone(), "mean")
  end
  self.d = self.d and self.d + d or d
  self.r = self.r and self.r + r or r
  self.count = self.count + 1
  if not shown or not self.file then return end
  self.file:write(("%d,%.7g,%.7g\n"):format(step, self.d:item() / self.count, self.r:item() / self.count))
  self.file:flush()
  if step % self.every == 0 then self.d, self.r, self.count = nil, nil, 0 end
end

function Parts:state() return { d = self.d, r = self.r, count = self.count } end
function Parts:close() if self.file then self.file:close() end end

-- {{step, value}} of one column
function Parts:read(column)
  local col = column == "diffusion_loss" and 2 or 3
  local pts = {}
  for line in io.lines(self.path) do
    local f = {}
    for v in line:gmatch("[^,]+") do f[#f + 1] = v end
    local st = math.tointeger(tonumber(f[1]))
    if st and tonumber(f[col]) then pts[#pts + 1] = { st, tonumber(f[col]) } end
  end
  return pts
end

-- evals.csv of image runs: one row per eval each time the evals are measured
-- (every eval_every steps and at the end); seconds = training time at the step.
local evals_header = "step,name,fd,floor,accuracy,seconds"
function Train.eval_rows(step, results, seconds)
  local function num(v) return v and ("%.9g"):format(v) or "" end
  local lines = {}
  for _, e in ipairs(results) do
    lines[#lines + 1] = ("%d,%s,%s,%s,%s,%.3f\n"):format(step, e.name, num(e.fd), num(e.floor), num(e.accuracy), seconds)
  end
  return table.concat(lines)
end

-- Runs fn() with the progress clock stopped: evals and grids inside the loop
-- do not count as training time (elapsed, rates, the time in evals.csv).
local function off_the_clock(progress, fn)
  local t = core.clock()
  local r = fn()
  local dt = core.clock() - t
  progress.t0, progress.last_t = progress.t0 + dt, progress.last_t + dt
  return r
end

-- Trains per cfg (completed and checked here); opts.resume = checkpoint path.
-- Order: check the config, build, read the resume checkpoint, and only then
-- touch the run folder (lock, then write).
local function run(cfg, opts, dist)
  local main = not dist or dist.main -- the rank that writes (all of them in a single process)
  cfg = Config.check(Train.complete(cfg))
  Train.absolute_paths(cfg)
  local out = cfg.out
  local image = Image.is_image(cfg)
  -- under mpirun a missing encoder is an error (every rank would train it)
  if image then Image.ensure_encoder(cfg, not dist and opts or nil) end
  local rngs = mf.Rngs(cfg.seed)
  local data = Train.data_source(cfg, rngs)
  local dim = data.dim or 2
  local shape = data.shape or { dim }
  if not image and (#shape ~= 1 or shape[1] ~= 2) then
    error(("moonflow.train: data.name=%s gives samples of shape {%s}; the toy configs train on 2-D points "
      .. "(shape {2}: an {N, 2} array)"):format(cfg.data.name, table.concat(shape, ", ")), 0)
  end
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
  local ema = mf.optim.EMA(net, { decay = cfg.ema.decay, warmup = cfg.ema.warmup })
  local start, window, parts_state = 0, nil, nil
  if opts.resume then
    local targets = { model = net, ema = ema, optim = opt, rngs = rngs }
    if opt_proj then targets.projector, targets.optim_projector = trainer.projector, opt_proj end
    local ck = mf.io.load(opts.resume, targets)
    start = math.tointeger(ck.step)
    if not start or start < 0 then
      error(("moonflow.train: %s: step %s is not a step count"):format(opts.resume, tostring(ck.step)), 0)
    end
    if start > total then
      error(("moonflow.train: %s is at step %d, past steps=%d"):format(opts.resume, start, total), 0)
    end
    window = Progress.check_state(ck.progress, opts.resume)
    if ck.data ~= nil and data.set_state then data:set_state(ck.data) end
    parts_state = ck.parts
  end
  if dist then dist:broadcast_state({ net, opt_proj and trainer.projector }, { ema }, { opt, opt_proj }) end
  local lock, log_path, log = nil, out .. "/log.csv", nil
  if main then lock, log = Train.open_folder(cfg, opts, start, "step,loss,lr,time") end
  local eval_every = cfg.eval_every or 0
  local evals_path, evals_log = out .. "/evals.csv", nil
  if image and main then
    -- rows up to the resumed step; a resume at the last step measures it again
    local keep = start == total and start - 1 or start
    evals_log = Train.log_file(evals_path, keep, eval_every > 0 and eval_every or total, total, evals_header)
  end
  local progress = Progress.new { total = cfg.steps, every = cfg.log_every, start = start, state = window }
  -- REPA's two losses, logged apart (parts.csv) for the alignment curve
  local parts = cfg.repa and Train.Parts.new(out .. "/parts.csv", start, cfg, parts_state, dist) or nil
  local ckpt = out .. "/checkpoint.safetensors"
  local function save(step, elapsed)
    if not main then return end
    -- the config as data (JSON), never as code; the progress window so that a
    -- resumed log continues this one
    local entries = { model = net, ema = ema, optim = opt, step = step, rngs = rngs,
      config = Config.copy(cfg), progress = progress:state(elapsed) }
    if image and data.get_state then entries.data = data:get_state() end
    if parts then entries.parts = parts:state() end
    if opt_proj then entries.projector, entries.optim_projector = trainer.projector, opt_proj end
    mf.io.save(ckpt, entries)
  end
  local batch = dist and dist:shard_streams(rngs, cfg.batch) or cfg.batch -- this rank's rows
  for step = start + 1, cfg.steps do
    local lr = lr_at(ocfg, step, total)
    local x, y = data:batch(batch)
    local res
    if image then
      local cond = Image.train_cond(cfg, net, y, rngs)
      if cfg.repa then
        res = trainer:loss(x, Image.repa_features(Image.encoder(cfg.encoder), x), cond)
      else
        res = trainer:loss(x, cond)
      end
    elseif cfg.repa then
      res = trainer:loss(x, Train.repa_features(x, cfg.repa.feature_dim))
    else
      res = trainer:loss(x)
    end
    local loss = res.loss:mean()
    opt:zero_grad()
    if opt_proj then opt_proj:zero_grad() end
    if dist then loss = dist:backward(loss, { opt, opt_proj }) else loss:backward() end -- dist: means over ranks
    opt:step()
    if opt_proj then opt_proj:step() end
    ema:update()
    local shown = progress:update(step, loss)
    if parts then parts:update(step, res, shown ~= nil) end
    local elapsed = progress:elapsed()
    -- image evals and grids before the save: the checkpoint holds the
    -- sampling stream after them, so a resumed run samples as this one
    if image and main then
      if eval_every > 0 and step % eval_every == 0 and step < total then
        off_the_clock(progress, function()
          local res = Image.evaluate(cfg, make_model, ema.network, rngs, out)
          evals_log:write(Train.eval_rows(step, res, elapsed))
          evals_log:flush()
          for _, e in ipairs(res) do print(("step %d:%s"):format(step, Image.line(e))) end
        end)
      end
      if (cfg.grid_every or 0) > 0 and step % cfg.grid_every == 0 then
        off_the_clock(progress, function() Image.step_grid(cfg, make_model, ema.network, rngs, out, step) end)
      end
    end
    -- save before logging: a logged checkpoint step is a saved one
    if step == cfg.steps or (cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0) then
      save(step, elapsed)
    end
    if shown and log then
      log:write(("%d,%.7g,%.7g,%.3f\n"):format(step, shown, lr, elapsed))
      log:flush()
    end
    if not image and cfg.plot_every > 0 and step % cfg.plot_every == 0 then
      Train.evaluate(cfg, make_model, ema.network, data, rngs, out,
        { evals = { cfg.evals[1] }, n = math.min(cfg.eval_n, 1000), dist = dist })
    end
  end
  if dist then dist:pause_streams(rngs) end
  -- the curve from the whole log, so a resumed run draws all of it
  local losses = {}
  if log then log:close() end
  for line in main and io.lines(log_path) or function() end do
    local st, l = line:match("^(%d+),([^,]+)")
    if st then losses[#losses + 1] = { tonumber(st), tonumber(l) } end
  end
  local train_time = progress:elapsed()
  local results, floor, grid
  if image and not main then
    results = {} -- rank 0 measures and draws; its sample stream is its own
  elseif image then
    results = Image.evaluate(cfg, make_model, ema.network, rngs, out)
    if evals_log then
      evals_log:write(Train.eval_rows(cfg.steps, results, train_time))
      evals_log:close()
    end
    -- the final grid under its step's name too: written in the loop, else
    -- from the first eval's samples when they hold 10 a class, else drawn
    grid = ("%s/samples_%d.png"):format(out, cfg.steps)
    local classes = ema.network.num_classes or 1
    local in_loop = (cfg.grid_every or 0) > 0 and cfg.steps % cfg.grid_every == 0
    if not in_loop and results[1].samples:shape()[1] >= 10 * classes then
      Image.grid(grid, results[1].samples, classes, 10, ("step %d"):format(cfg.steps))
    elseif not in_loop then
      Image.step_grid(cfg, make_model, ema.network, rngs, out, cfg.steps)
    end
  else
    results = Train.evaluate(cfg, make_model, ema.network, data, rngs, out, { dist = dist })
    floor = mf.metrics.energy_floor(data, cfg.eval_n)
  end
  local loss_opts = { title = "training loss", xlabel = "step", ylabel = "loss" }
  if parts and main then
    parts:close()
    mf.plot.curves(out .. "/loss.png", {
      { losses, { title = "training loss (diffusion + w repa)", xlabel = "step", ylabel = "loss" } },
      { parts:read("diffusion_loss"), { title = "diffusion loss", xlabel = "step" } },
      { parts:read("repa_loss"), { title = "alignment loss (-cos)", xlabel = "step" } },
    })
  elseif main then
    mf.plot.curve(out .. "/loss.png", losses, loss_opts)
  end
  if lock then lock:unlock() end
  return {
    out = out, time = train_time, final_loss = losses[#losses] and losses[#losses][2],
    results = results, floor = floor, checkpoint = ckpt, log = log_path, config = out .. "/config.lua",
    loss_picture = out .. "/loss.png", image = image, grid = grid, parts = parts and parts.path,
    evals = evals_log and evals_path or nil,
  }
end

-- Trains per cfg; under mpirun with several processes, data-parallel
-- (app/dist_train.lua), and any rank's error ends the whole job.
function Train.run(cfg, opts)
  opts = opts or {}
  -- a distill = {...} block: DMD2 distillation (app/distill.lua); task = "classifier"
  local kind = type(cfg) == "table" and (cfg.distill ~= nil and "distill" or cfg.task == "classifier" and "classifier")
  if kind then
    local D = require "moonflow.dist"
    if D.launched() then
      error(("moonflow.train: a %s run under mpirun (%d processes) is not data-parallel yet; run it in one process")
        :format(kind, D.launched_size()), 0)
    end
    return require("moonflow.app." .. kind).run(cfg, opts)
  end
  local dist = DistTrain.from_env()
  if not dist then return run(cfg, opts, nil) end
  return dist:guard(run, cfg, opts, dist)
end

-- The summary lines printed at the end of a run.
function Train.summary(r)
  if r.distill then return require("moonflow.app.distill").summary(r) end
  if r.classifier then return require("moonflow.app.classifier").summary(r) end
  local lines = {}
  lines[#lines + 1] = ("trained in %s, final loss %.5f"):format(Progress.hms(r.time), r.final_loss or 0 / 0)
  for _, e in ipairs(r.results) do
    if r.image then
      lines[#lines + 1] = Image.line(e)
    else
      lines[#lines + 1] = ("  %-22s energy distance %.5f  (floor %.5f, ratio %.2f)"):format(
        e.name, e.energy, r.floor, e.energy / r.floor)
    end
  end
  lines[#lines + 1] = "wrote:"
  for _, k in ipairs { "config", "log", "parts", "evals", "checkpoint", "loss_picture", "grid" } do
    if r[k] then lines[#lines + 1] = "  " .. r[k] end
  end
  for _, e in ipairs(r.results) do lines[#lines + 1] = "  " .. e.picture end
  return table.concat(lines, "\n")
end

return Train
