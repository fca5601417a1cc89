-- MeanFlow (Geng et al. 2025, arXiv:2505.13447; diffuse_nnx MeanFlowInterface),
-- extends SiT. The network learns the average velocity
--   u(x_t, t, r) = 1/(t - r) int_r^t v(x_s, s) ds,   network(c_in x_t, t, {dt = t - r, y})
--   transport: x_t = (1 - t) x + t n
--   loss:      L = || u(x_t, t, r) - sg(v - (t - r) du/dt) ||^2, du/dt = v . d_x u + d_t u
--   sampling:  x_r = x_t - (t - r) u(x_t, t, r)
-- Random streams: rngs.time (t, r), rngs.noise (n), rngs.label_dropout (cond_drop).
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local O = require "moonflow.ops"
local D = require "moonflow.diffusion"
local Interface = require "moonflow.interfaces.base"
local SiT = require "moonflow.interfaces.sit"

local C = core
local is_tensor = A.is_tensor
local MeanFlow = SiT:extend("MeanFlow")
MeanFlow.SUPPORTED = SiT.SUPPORTED
MeanFlow.DEFAULTS = {
  train_time_dist_type = "uniform", t_mu = 0.0, t_sigma = 1.0, n_mu = 0.0, n_sigma = 1.0, x_sigma = 0.5,
  guidance_scale = 1.0, guidance_mixture_ratio = 0.5, guidance_t_min = 0.0, guidance_t_max = 1.0,
  norm_eps = 1e-3, norm_power = 1.0, fm_portion = 0.75, cond_drop_ratio = 0.5, t_shift_base = 4096,
  loss_t_shift = false,
}

-- opts: the SiT options plus guidance_scale, guidance_mixture_ratio,
-- guidance_t_min, guidance_t_max, norm_eps, norm_power, fm_portion, cond_drop_ratio,
-- and loss_t_shift (an extension, false by default as in diffuse_nnx, whose
-- MeanFlow loss never shifts): true shifts t and r in loss like SiT's t, by
-- sqrt(prod(x.shape[2..]) / t_shift_base); t_shift_base is used only then.
function MeanFlow.new(opts)
  local self = SiT.new(opts, MeanFlow)
  for _, k in ipairs { "fm_portion", "cond_drop_ratio" } do
    if self[k] < 0 or self[k] > 1 then
      error(("moonflow.interfaces.MeanFlow: %s must be in [0, 1], got %s"):format(k, self[k]), 2)
    end
  end
  if self.guidance_t_min > self.guidance_t_max then
    error(("moonflow.interfaces.MeanFlow: guidance_t_min %s is above guidance_t_max %s"):format(
      self.guidance_t_min, self.guidance_t_max), 2)
  end
  return self
end

-- the null label: cond.neg_y, else network.num_classes for every row
function MeanFlow:null_label(B)
  local nc = type(self.network) == "table" and self.network.num_classes or nil
  if nc == nil then
    error("moonflow.interfaces.MeanFlow: neg_y not given and the network declares no num_classes", 3)
  end
  return C.full({ B }, nc, "i32")
end

-- (t, r) with t >= r: two draws of sample_t ordered, and the first
-- floor(B fm_portion) rows get r = t (plain flow matching on those rows).
function MeanFlow:sample_t_r(shape, dtype)
  if type(shape) == "number" then shape = { shape } end
  local a, b = self:sample_t(shape, dtype), self:sample_t(shape, dtype)
  local t, r = C.binary("maximum", a, b), C.binary("minimum", a, b)
  local B = shape[1]
  -- a row shard of a global batch (data parallelism, Generator:shard): the
  -- first floor(total fm_portion) rows of the whole batch, counted globally
  local sh = self.rngs.time:sharding()
  local first, total = 0, B
  if sh and sh.count == B then first, total = sh.first, sh.total end
  local k = math.floor(total * self.fm_portion) - first
  if k >= B then
    r = t
  elseif k > 0 then
    r = C.cat({ C.narrow(t, 1, 1, k), C.narrow(r, 1, k + 1, B - k) }, 1)
  end
  return t, r
end

-- Condition dropout: m ~ Binomial(B, cond_drop_ratio) (B Bernoulli draws
-- counted on the device), and the first m rows get neg_y and the unguided
-- velocity n - x. Returns (v, y); y = nil (an unconditional network) stays nil.
function MeanFlow:cond_drop(x, n, v, y, neg_y)
  local B = (x:shape())[1]
  -- a row shard of a global batch: m counts over the whole batch (its B
  -- uniforms, cheap), and the shard's rows are numbered globally
  local g, first = self.rngs.label_dropout, 0
  local sh = g:sharding()
  local u
  if sh and sh.count == B then
    u, first = g:uniform({ sh.total }, { rows = false }), sh.first
  else
    u = g:uniform({ B })
  end
  local m = C.reduce("sum", C.binary("lt", u, self.cond_drop_ratio), nil, false) -- {} count
  local mask = C.binary("lt", C.arange(B, first, 1, "f32"), m)                  -- row < m
  local dt = C.dtype(v)
  local vm = Interface.bcast_right(C.dtype(mask) == dt and mask or C.to(mask, dt), v)
  v = O.where(vm, O.sub(n, x), v)
  if y ~= nil then y = C.where(C.to(mask, "i32"), neg_y, y) end
  return v, y
end

-- runs fn with the network in eval mode, restored after. (diffuse_nnx calls
-- network.eval() and returns before network.train() when k = 0, leaving the
-- training pass without dropout; here only the guidance pass runs in eval.)
local function in_eval(net, fn)
  local was = type(net) == "table" and net.training and type(net.eval) == "function"
  if was then net:eval() end
  local ok, a, b = pcall(fn)
  if was then net:train() end
  if not ok then error(a, 0) end
  return a, b
end

-- Instantaneous velocity with guidance (MeanFlow paper, eq. 13 and 19):
--   v = n - x outside [guidance_t_min, guidance_t_max],
--   v~ = w v + (1 - w - k) v_uncond + k v_cond inside, w = guidance_scale,
--   k = guidance_mixture_ratio, v_(un)cond = u(x_t, t, t | y or neg_y) from
--   the network in eval mode without gradient. No network call when w = 1, k = 0.
-- Without labels y (and neg_y) is the null label (none for a network without
-- num_classes), as in diffuse_nnx: both branches are u(x_t, t, t | null), so
-- one call gives v~ = w v + (1 - w) v_uncond, and none when w = 1.
-- cond = {y, neg_y}; returns (v, y, neg_y).
function MeanFlow:insta_velocity(x, n, t, cond)
  cond = Interface.cond_of(cond)
  local tb = self:_t(t, x, "MeanFlow.insta_velocity")
  local x_t, v = D.sit_noise_target(x, n, tb)
  local y, neg_y = cond.y, cond.neg_y
  local B = (x:shape())[1]
  local nc = type(self.network) == "table" and self.network.num_classes or nil
  if y == nil and nc ~= nil then y = C.full({ B }, nc, "i32") end
  if y == nil and neg_y ~= nil then
    error("moonflow.interfaces.MeanFlow: neg_y given without y and the network declares no num_classes", 2)
  end
  if y ~= nil and neg_y == nil then neg_y = self:null_label(B) end
  local w, k = self.guidance_scale, self.guidance_mixture_ratio
  if w == 1 and k == 0 then return v, y, neg_y end
  local ku = 1 - w - k
  if cond.y == nil and cond.neg_y == nil then ku, k = 1 - w, 0 end -- one branch: u(. | null)
  if ku == 0 and k == 0 then return v, y, neg_y end
  local v_cond, v_unc = A.no_grad(function()
    return in_eval(self.network, function()
      local zero = C.full({ B }, 0, C.dtype(x))
      if ku ~= 0 and k ~= 0 then -- both in one batched call
        local out = self:call_network(C.cat({ x_t, x_t }, 1), C.cat({ tb, tb }, 1),
          Interface.with(cond, { y = C.cat({ y, neg_y }, 1), neg_y = false, dt = C.cat({ zero, zero }, 1) }))
        return C.narrow(out, 1, 1, B), C.narrow(out, 1, B + 1, B)
      end
      local lab = k ~= 0 and y or neg_y
      local out = self:call_network(x_t, tb, Interface.with(cond, { y = lab, neg_y = false, dt = zero }))
      if k ~= 0 then return out, nil end
      return nil, out
    end)
  end)
  local g = C.binary("mul", v, w)
  if v_unc then g = C.binary("add", g, C.binary("mul", v_unc, ku)) end
  if v_cond then g = C.binary("add", g, C.binary("mul", v_cond, k)) end
  local inside = C.binary("mul", C.binary("ge", tb, self.guidance_t_min), C.binary("le", tb, self.guidance_t_max))
  return C.where(Interface.bcast_right(inside, v), g, v), y, neg_y
end

-- (u, target, features): u = network(c_in x_t, t, {dt = t - r, y}) carries gradient;
-- target = sg(v - clip(t - r, 0, 1) du/dt) with du/dt from one forward-mode
-- pass, mf.autograd.jvp of (x_t, t) -> u with tangents (v, 1) (r fixed: 0).
-- v is the guided velocity after cond_drop. cond = {y, neg_y}.
function MeanFlow:target(x, n, t, r, cond)
  cond = Interface.cond_of(cond)
  local tb, rb = self:_t(t, x, "MeanFlow.target"), self:_t(r, x, "MeanFlow.target")
  local v, y, neg_y = self:insta_velocity(x, n, tb, cond)
  v, y = self:cond_drop(x, n, v, y, neg_y)
  local x_t = self:sample_x_t(x, n, tb)
  local c2 = Interface.with(cond, { y = y, neg_y = false })
  local B = (x:shape())[1]
  local features
  local function u_fn(z, tt)
    -- c_in = 1 and c_noise = t for the SiT family
    c2.dt = O.sub(tt, rb)
    local out
    out, features = self:call_network(z, tt, c2)
    return out
  end
  local u, dudt = A.jvp(u_fn, { x_t, tb }, { v, C.full({ B }, 1, C.dtype(x)) })
  local h = C.clamp(C.binary("sub", tb, rb), 0, 1)
  local target = C.binary("sub", v, C.binary("mul", Interface.bcast_right(h, dudt), dudt))
  return u, target, features
end

-- u = network(c_in x_t, t, {dt = t - r, y}), the average velocity over [r, t]
function MeanFlow:pred(x_t, t, r, cond)
  if r == nil or (type(r) == "table" and not is_tensor(r)) then
    error("moonflow.interfaces.MeanFlow.pred: expected pred(x_t, t, r, cond)", 2)
  end
  local tb = self:_t(t, x_t, "MeanFlow.pred")
  local rb = self:_t(r, x_t, "MeanFlow.pred")
  local out = self:call_network(x_t, tb, Interface.with(Interface.cond_of(cond), { dt = O.sub(tb, rb) }))
  return out
end

-- score = -(x_t + (1 - t) u(x_t, t, t)) / t: at r = t the average velocity is
-- the instantaneous one, and the SiT score follows. (diffuse_nnx evaluates u
-- at r = 0 and divides by t^2; neither is the score.)
function MeanFlow:score(x_t, t, cond)
  local tb = self:_t(t, x_t, "MeanFlow.score")
  local u = self:pred(x_t, tb, tb, cond)
  return O.neg(O.div(O.add(x_t, Interface.scale(O.sub(1, tb), u)), Interface.bcast_right(tb, x_t)))
end

-- L = sum((u - target)^2) per sample, times sg(1 / (L + norm_eps)^norm_power),
-- (t, r) from sample_t_r as they are; with loss_t_shift, t and r shifted like
-- SiT's t (the shift is monotone, so r <= t stays).
-- opts.return_aux adds out (u), features (of the u pass), t, r, n, target, weight.
function MeanFlow:loss(x, cond, opts)
  local B = (x:shape())[1]
  local dt = C.dtype(x)
  local t, r = self:sample_t_r({ B }, dt)
  local shift = self.loss_t_shift and self:shift_of(x) or 1
  if shift ~= 1 then t, r = Interface.t_shift(t, shift), Interface.t_shift(r, shift) end
  local n = self:sample_n(x:shape(), dt)
  local u, target, features = self:target(x, n, t, r, cond)
  local sse = D.wsse(u, target, nil, { reduce = "sum" })
  local w = C.binary("pow", C.binary("add", sse:detach(), self.norm_eps), -self.norm_power)
  local res = { loss = O.mul(sse, w) }
  if opts and opts.return_aux then
    res.out, res.features, res.t, res.r, res.n, res.target, res.weight = u, features, t, r, n, target, w
  end
  return res
end

return MeanFlow
