-- `moonflow sample CHECKPOINT`: rebuild the model a training run describes,
-- load its weights, sample, measure and draw.
local mf = require "moonflow"
local Train = require "moonflow.train"

local S = {}

local function config_of(ck, path)
  local src = ck.config
  if type(src) ~= "string" then
    error(("moonflow.sample: %s holds no config (was it written by `moonflow train`?)"):format(path), 0)
  end
  local f, err = load("return " .. src, "=config", "t", { math = math })
  if not f then error(("moonflow.sample: %s: bad config: %s"):format(path, err), 0) end
  return Train.complete(f())
end

-- o: ckpt, sampler, steps, n, out, seed, raw (see commands/sample.lua)
function S.run(o)
  local ck = mf.io.load(o.ckpt)
  local cfg = config_of(ck, o.ckpt)
  local seed = tonumber(o.seed) or cfg.seed
  local rngs = mf.Rngs(math.tointeger(seed) or cfg.seed)
  local d = Train.data_source(cfg, rngs)
  local net, _, make_model = Train.build(cfg, rngs, d.dim or 2)
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
