-- `moonflow sample CHECKPOINT`: rebuild the model a training run describes,
-- load its weights, sample, measure and draw.
local mf = require "moonflow"
local Config = require "moonflow.app.config"
local Train = require "moonflow.app.train"
local Progress = require "moonflow.app.progress"
local Image = require "moonflow.app.image"

local S = {}

-- The checkpoint's config: JSON data, checked like a config file's. Nothing
-- from the file is ever run: a config stored as Lua source (older moonflow)
-- is refused.
local function config_of(ck, path)
  local c = ck.config
  if type(c) == "string" then
    error(("moonflow.sample: %s stores its config as Lua source (written by an older moonflow); "
      .. "it is not run. Retrain, or resume from it with `moonflow train CONFIG resume=%s` "
      .. "to write a checkpoint with a JSON config"):format(path, path), 0)
  end
  if type(c) ~= "table" then
    error(("moonflow.sample: %s holds no config (was it written by `moonflow train`?)"):format(path), 0)
  end
  if c.task == "classifier" then
    error(("moonflow.sample: %s is a classifier checkpoint (task = \"classifier\"): it draws no samples; "
      .. "its encoder is encoder.safetensors beside it"):format(path), 0)
  end
  local ok, cfg = pcall(function() return Config.check(Train.complete(Config.copy(c))) end)
  if not ok then error(("moonflow.sample: %s: %s"):format(path, cfg), 0) end
  return cfg
end

-- Checks the network the config describes against the weights in the file
-- before anything is built: the shapes its parameters would have
-- (Train.param_shapes) must be exactly the stored model's, so a config
-- cannot ask for more memory than the file already holds. (The EMA's flat
-- shadow is checked against the built network by EMA:load_state_dict.)
local function check_weights(cfg, dim, ck, path)
  local function fail(fmt, ...) error(("moonflow.sample: %s: " .. fmt):format(path, ...), 0) end
  local function str(s) return "{" .. table.concat(s, ", ") .. "}" end
  local want, have = {}, {}
  for i, s in ipairs(Train.param_shapes(cfg, dim)) do want[i] = str(s) end
  if type(ck.model) ~= "table" then fail("no model weights") end
  for name, t in pairs(ck.model) do
    if not mf.autograd.is_tensor(t) then fail("model entry %s is not a tensor", tostring(name)) end
    have[#have + 1] = str(t:shape())
  end
  table.sort(want)
  table.sort(have)
  local a, b = table.concat(want, " "), table.concat(have, " ")
  if a ~= b then
    if Image.is_image(cfg) then
      local n = Image.network_options(cfg)
      fail("the config's DiT (hidden_size %d, depth %d, patch_size %d) does not match the stored weights: "
        .. "its parameters would have shapes %s, the file has %s", n.hidden_size, n.depth, n.patch_size, a, b)
    end
    fail("the config's network (dim %d, hidden %d, depth %d) does not match the stored weights: "
      .. "its parameters would have shapes %s, the file has %s", dim, cfg.network.hidden, cfg.network.depth, a, b)
  end
end

-- Which samplers serve which interface, and why the others do not. Grids:
-- SiT and MeanFlow run on t in [0, 1] ("uniform"), EDM on sigma ("exp").
S.serves = {
  SiT = { Euler = true, Heun = true, EulerMaruyama = true },
  EDM = { Euler = true, Heun = true, EulerMaruyama = true, EDM = true },
  MeanFlow = { EulerJump = true, Euler = true, Heun = true, EulerMaruyama = true },
}
local why = {
  EDM = "the EDM sampler applies to EDM checkpoints (the sigma path x + sigma n)",
  EulerJump = "EulerJump applies to MeanFlow checkpoints (the average velocity u(x, t, r))",
}
local order = { "Euler", "EulerJump", "Heun", "EulerMaruyama", "EDM" }
local grid_keys = {
  uniform = { "t_start", "t_end", "t_shift_base", "t_shift_cur" },
  exp = { "sigma_min", "sigma_max", "rho" },
}

-- The evaluation to run: the config's eval of that sampler, else the grid
-- options of its first eval that apply to the interface's grid.
local function eval_for(cfg, sampler)
  local kind = cfg.interface.kind
  if sampler == nil then return Config.copy(cfg.evals[1]) end
  if not S.serves[kind][sampler] then
    local ok = {}
    for _, s in ipairs(order) do if S.serves[kind][s] then ok[#ok + 1] = s end end
    error(("sample: --sampler %s does not apply to this %s checkpoint: %s; use %s"):format(
      sampler, kind, why[sampler], table.concat(ok, ", ")), 0)
  end
  for _, ev in ipairs(cfg.evals) do
    if (ev.sampler or "Euler") == sampler then return Config.copy(ev) end
  end
  local dist = kind == "EDM" and "exp" or "uniform"
  local first = cfg.evals[1]
  local ev = { sampler = sampler, num_sampling_steps = first.num_sampling_steps, sampling_time_dist = dist }
  for _, k in ipairs(grid_keys[dist]) do
    ev[k] = first[k]
    if first.sampling_time_kwargs and first.sampling_time_kwargs[k] ~= nil then ev[k] = first.sampling_time_kwargs[k] end
  end
  return ev
end

-- the checkpoint's EMA weights into net (its raw weights with --raw or without an EMA)
local function load_weights(net, ck, cfg, o)
  if o.raw or not ck.ema then
    net:load_state_dict(ck.model)
  else
    local ema = mf.optim.EMA(net, { decay = cfg.ema.decay })
    ema:load_state_dict(ck.ema)
    ema:copy_to(net)
  end
end

-- the command line's sampler steps into ev and its name; -> sample count, checkpoint folder
local function name_eval(ev, o, cfg)
  ev.sampler = ev.sampler or "Euler"
  if o.steps then ev.num_sampling_steps = o.steps end
  ev.name = ("%s_%dsteps"):format(ev.sampler:lower(), ev.num_sampling_steps or 50)
  return o.n or cfg.eval_n, o.ckpt:match("^(.*)/[^/]*$") or "."
end

-- The samples beside the picture: X.png -> X.safetensors and X.npy.
local function save(x, picture, meta)
  local stem = picture:gsub("%.png$", "")
  local st, npy = stem .. ".safetensors", stem .. ".npy"
  mf.io.save_safetensors(st, { samples = x }, meta)
  if mf.io.save_npy == nil then
    return { st }, ("sample --save: this moonflow has no mf.io.save_npy; wrote %s only"):format(st)
  end
  mf.io.save_npy(npy, x)
  return { st, npy }
end

-- The model builder a sampler takes: MeanFlow's one-time samplers take the
-- instantaneous velocity v(x, t) = u(x, t, t).
function S.model_for(cfg, ev, make_model)
  if cfg.interface.kind ~= "MeanFlow" or ev.sampler == "EulerJump" then return make_model end
  return function(network)
    local m = make_model(network)
    return setmetatable({ pred = function(_, x, t, cond) return m:pred(x, t, t, cond) end,
      score = function(_, x, t, cond) return m:score(x, t, cond) end }, { __index = m })
  end
end

-- An image checkpoint: class-conditional samples (labels cycling), a grid
-- with one row per class, FD, floor and class accuracy in the features of
-- the config's encoder.
function S.run_image(o, ck, cfg)
  if o.encoder then cfg.encoder = o.encoder end
  local ev = eval_for(cfg, o.sampler)
  if ev.guidance_scale == nil then ev.guidance_scale = cfg.evals[1].guidance_scale end
  if o.guidance then ev.guidance_scale = o.guidance end
  local seed = o.seed or cfg.seed
  local rngs = mf.Rngs(seed)
  check_weights(cfg, nil, ck, o.ckpt)
  local net, _, make_model = Train.build(cfg, rngs)
  load_weights(net, ck, cfg, o)
  local n, dir = name_eval(ev, o, cfg)
  if ev.guidance_scale and ev.guidance_scale ~= 1 then ev.name = ev.name .. ("_cfg%g"):format(ev.guidance_scale) end
  ev.picture = o.out or (dir .. "/samples.png")
  if cfg.encoder then
    local f = io.open(cfg.encoder, "rb")
    if not f then
      error(("moonflow.sample: %s: its encoder %s is gone; train it again with "
        .. "scripts/moonflow train scripts/configs/fashion_encoder.lua out=%s"):format(o.ckpt, cfg.encoder,
          cfg.encoder:match("^(.*)/[^/]*$") or "."), 0)
    end
    f:close()
  end
  local ticker = Progress.ticker { label = ev.name }
  local r = Image.evaluate(cfg, S.model_for(cfg, ev, make_model), net, rngs, nil,
    { evals = { ev }, n = n, callback = ticker })[1]
  ticker:done()
  r.image = true
  r.wrote = { r.picture }
  if o.save then
    local wrote
    wrote, r.save_error = save(r.samples, r.picture, { checkpoint = o.ckpt, sampler = ev.sampler,
      num_sampling_steps = tostring(ev.num_sampling_steps or 50), seed = tostring(seed) })
    for _, p in ipairs(wrote) do r.wrote[#r.wrote + 1] = p end
  end
  return r
end

-- a result's line as commands/sample.lua prints it
function S.line(r)
  if r.image then
    if r.fd then
      return ("%s, %d samples: FD %.3f (floor %.3f), class accuracy %.1f%%"):format(r.name, r.n, r.fd, r.floor,
        100 * (r.accuracy or 0 / 0))
    end
    return ("%s, %d samples (the config names no encoder: no FD)"):format(r.name, r.n)
  end
  return ("%s, %d samples: energy distance %.5f (floor %.5f, ratio %.2f)"):format(r.name, r.n, r.energy, r.floor,
    r.energy / r.floor)
end

-- A distillation checkpoint: the student (EMA weights unless raw) at its step
-- counts (1 and #student_t_list, or --steps), measured as the run measures
-- it: energy distance and floor on points; FD, floor and class accuracy on
-- images. Returns {results = {...}, wrote = files, save_error}.
function S.run_distill(o)
  local Distill = require "moonflow.app.distill"
  local function fail(fmt, ...) error(("sample: " .. fmt):format(...), 0) end
  local b, cfg = Distill.load(o.ckpt)
  local tl = cfg.distill.student_t_list
  local what = ("{%s}"):format(table.concat(tl, ", "))
  if o.sampler then
    fail("--sampler %s does not apply to a distilled student (%s): it samples itself along its student_t_list %s; "
      .. "choose its step count with --steps", o.sampler, o.ckpt, what)
  end
  if o.guidance then
    fail("--guidance does not apply to a distilled student (%s): it was trained against the teacher at guidance %g "
      .. "and samples without guidance", o.ckpt, cfg.distill.guidance_scale or 1)
  end
  if o.steps and o.steps > #tl then
    fail("--steps %d: this student samples at 1 to %d steps (student_t_list %s)", o.steps, #tl, what)
  end
  if b.image and o.encoder then b.encoder = o.encoder end
  local f = b.encoder and io.open(b.encoder, "rb")
  if f then f:close() end
  if b.encoder and not f then
    fail("%s: its encoder %s is gone; train it again with scripts/moonflow train scripts/configs/fashion_encoder.lua "
      .. "out=%s (or pass --encoder PATH)", o.ckpt, b.encoder, b.encoder:match("^(.*)/[^/]*$") or ".")
  end
  local counts = o.steps and { o.steps } or Distill.step_counts(cfg)
  local seed = o.seed or cfg.seed
  local dir = o.ckpt:match("^(.*)/[^/]*$") or "."
  -- pictures: --out (one count), FILE_<name>.png beside it (several), else samples_<name>.png beside the checkpoint
  local function picture(name)
    if o.out and #counts == 1 then return o.out end
    if o.out then return (o.out:gsub("%.png$", "")) .. "_" .. name .. ".png" end
    return dir .. "/samples_" .. name .. ".png"
  end
  local results = Distill.evaluate(cfg, b, mf.Rngs(seed), nil, { n = o.n or cfg.eval_n, counts = counts, teacher = false,
    picture = picture, network = (o.raw and b.student) or nil, repeats = 1 })
  local out = { results = results, wrote = {} }
  local wrote = out.wrote
  for _, r in ipairs(results) do
    r.image = b.image ~= nil
    if not b.image then r.floor = mf.metrics.energy_floor(b.data, r.n) end
    wrote[#wrote + 1] = r.picture
    if o.save then
      local files, e = save(r.samples, r.picture, { checkpoint = o.ckpt, sampler = "student",
        num_sampling_steps = tostring(r.steps), seed = tostring(seed) })
      for _, p in ipairs(files) do wrote[#wrote + 1] = p end
      out.save_error = out.save_error or e
    end
  end
  return out
end

-- o: ckpt, sampler, steps, n, out, seed, raw, save (see commands/sample.lua);
-- the options are checked there, the checkpoint's config here.
function S.run(o)
  local ck = mf.io.load(o.ckpt)
  if type(ck.config) == "table" and ck.config.distill ~= nil then return S.run_distill(o) end
  local cfg = config_of(ck, o.ckpt)
  cfg.repa = nil -- sampling needs the network only, not REPA's projector
  if Image.is_image(cfg) then return S.run_image(o, ck, cfg) end
  local ev = eval_for(cfg, o.sampler)
  local seed = o.seed or cfg.seed
  local rngs = mf.Rngs(seed)
  local dim = Train.data_dim(cfg)
  if dim then check_weights(cfg, dim, ck, o.ckpt) end
  local d = Train.data_source(cfg, rngs)
  if not dim then
    dim = d.dim or 2
    check_weights(cfg, dim, ck, o.ckpt)
  elseif (d.dim or 2) ~= dim then
    error(("moonflow.sample: %s: the data has dimension %d, the network %d"):format(o.ckpt, d.dim or 2, dim), 0)
  end
  local net, _, make_model = Train.build(cfg, rngs, dim)
  load_weights(net, ck, cfg, o)
  local n, dir = name_eval(ev, o, cfg)
  ev.picture = o.out or (dir .. "/samples.png")
  make_model = S.model_for(cfg, ev, make_model)
  local ticker = Progress.ticker { label = ev.name }
  local r = Train.evaluate(cfg, make_model, net, d, rngs, nil, { evals = { ev }, n = n, callback = ticker })[1]
  ticker:done()
  r.n = n
  r.floor = mf.metrics.energy_floor(d, n)
  r.wrote = { r.picture }
  if o.save then
    local wrote
    wrote, r.save_error = save(r.samples, r.picture, { checkpoint = o.ckpt, sampler = ev.sampler,
      num_sampling_steps = tostring(ev.num_sampling_steps or 50), seed = tostring(seed) })
    for _, p in ipairs(wrote) do r.wrote[#r.wrote + 1] = p end
  end
  return r
end

return S
