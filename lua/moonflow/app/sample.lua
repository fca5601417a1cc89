-- `moonflow sample CHECKPOINT`: rebuild the model a training run describes,
-- load its weights, sample, measure and draw.
local mf = require "moonflow"
local Config = require "moonflow.app.config"
local Train = require "moonflow.app.train"

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
    fail("the config's network (dim %d, hidden %d, depth %d) does not match the stored weights: "
      .. "its parameters would have shapes %s, the file has %s", dim, cfg.network.hidden, cfg.network.depth, a, b)
  end
end

-- o: ckpt, sampler, steps, n, out, seed, raw (see commands/sample.lua)
function S.run(o)
  local ck = mf.io.load(o.ckpt)
  local cfg = config_of(ck, o.ckpt)
  cfg.repa = nil -- sampling needs the network only, not REPA's projector
  local seed = tonumber(o.seed) or cfg.seed
  local rngs = mf.Rngs(math.tointeger(seed) or cfg.seed)
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
  if o.raw or not ck.ema then
    net:load_state_dict(ck.model)
  else
    local ema = mf.optim.EMA(net, { decay = cfg.ema.decay })
    ema:load_state_dict(ck.ema)
    ema:copy_to(net)
  end
  local ev = {}
  for k, v in pairs(cfg.evals[1]) do ev[k] = v end
  ev.sampler = ev.sampler or "Euler"
  if o.sampler then
    local same = o.sampler:lower() == ev.sampler:lower()
    local kinds = { euler = "Euler", eulerjump = "EulerJump", heun = "Heun", eulermaruyama = "EulerMaruyama", edm = "EDM" }
    local kind = kinds[o.sampler:lower():gsub("[_-]", "")]
    if not kind then error(("moonflow.sample: unknown sampler %q (Euler, EulerJump, Heun, EulerMaruyama, EDM)"):format(o.sampler), 0) end
    if not same then
      -- keep only the grid options that the config's sampler shares with this one
      ev = { sampler = kind, num_sampling_steps = ev.num_sampling_steps, t_shift_base = ev.t_shift_base,
        t_shift_cur = ev.t_shift_cur, sampling_time_dist = ev.sampling_time_dist, sigma_min = ev.sigma_min,
        sigma_max = ev.sigma_max, rho = ev.rho }
    end
    ev.sampler = kind
  end
  if o.steps then ev.num_sampling_steps = math.tointeger(tonumber(o.steps)) end
  local n = math.tointeger(tonumber(o.n or cfg.eval_n)) or 2000
  local dir = o.ckpt:match("^(.*)/[^/]*$") or "."
  local out = o.out or (dir .. "/samples.png")
  ev.name = ("%s_%dsteps"):format(ev.sampler:lower(), ev.num_sampling_steps or 0)
  ev.picture = out
  local r = Train.evaluate(cfg, make_model, net, d, rngs, nil, { evals = { ev }, n = n })[1]
  r.n = n
  r.floor = mf.metrics.energy_floor(d, n)
  return r
end

return S
