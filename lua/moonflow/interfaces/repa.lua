-- REPA (Yu et al. 2024, representation alignment; diffuse_nnx DiT_REPA): a
-- wrapper around an interface that aligns the network's hidden states at
-- depth repa_depth, projected per token by a small MLP, with given features
-- of the clean sample (say from a frozen encoder):
--   repa_loss = mean_flat(-cos(x_feature, projector(features[repa_depth])))
--   loss      = diffusion_loss + repa_loss_weight * repa_loss
-- Features are {B, hidden} (one token, e.g. VelocityMLP) or {B, T, hidden}.
-- The projector is this module's child (its own flat parameter buffer);
-- the network's parameters stay with the network.
local core = require "moonflow.core"
local A = require "moonflow.autograd"
local O = require "moonflow.ops"
local nn = require "moonflow.nn"
local Interface = require "moonflow.interfaces.base"

local C = core
local REPA = nn.Module:extend("REPA")

-- Linear(hidden, proj) -> SiLU -> Linear(proj, proj) -> SiLU -> Linear(proj, feature_dim)
function REPA.build_mlp(hidden_size, projector_dim, feature_dim, rngs, dtype)
  local o = { rngs = rngs, dtype = dtype }
  local m = nn.Sequential(nn.Linear(hidden_size, projector_dim, o), nn.SiLU(),
    nn.Linear(projector_dim, projector_dim, o), nn.SiLU(), nn.Linear(projector_dim, feature_dim, o))
  m:flatten()
  return m
end

local function posint(v, what)
  if math.type(v) ~= "integer" or v < 1 then
    error(("moonflow.interfaces.REPA: %s must be a positive integer, got %s"):format(what, tostring(v)), 3)
  end
end

-- opts: interface, feature_dim, repa_loss_weight, repa_depth, proj_dim,
-- dtype, rngs (the projector's init; default the interface's)
function REPA.new(opts)
  if type(opts) ~= "table" then error("moonflow.interfaces.REPA: expected an options table {interface = ...}", 2) end
  local known = { interface = 1, feature_dim = 1, repa_loss_weight = 1, repa_depth = 1, proj_dim = 1, dtype = 1, rngs = 1 }
  for k in pairs(opts) do
    if not known[k] then
      error(("moonflow.interfaces.REPA: unknown option %s (options: interface, feature_dim, repa_loss_weight, "
        .. "repa_depth, proj_dim, dtype, rngs)"):format(tostring(k)), 2)
    end
  end
  local iface = opts.interface
  if type(iface) ~= "table" or type(iface.loss) ~= "function" then
    error(("moonflow.interfaces.REPA: interface must be an interface (SiT, EDM, MeanFlow), got %s"):format(type(iface)), 2)
  end
  posint(opts.feature_dim, "feature_dim")
  posint(opts.repa_depth, "repa_depth")
  posint(opts.proj_dim, "proj_dim")
  if type(opts.repa_loss_weight) ~= "number" then
    error(("moonflow.interfaces.REPA: repa_loss_weight must be a number, got %s"):format(type(opts.repa_loss_weight)), 2)
  end
  local hidden = iface.network.hidden_size
  if math.type(hidden) ~= "integer" then
    error("moonflow.interfaces.REPA: the network must declare hidden_size", 2)
  end
  local m = nn.Module.create(REPA)
  m.interface, m.feature_dim, m.repa_depth = iface, opts.feature_dim, opts.repa_depth
  m.repa_loss_weight, m.proj_dim, m.hidden_size = opts.repa_loss_weight, opts.proj_dim, hidden
  m:add_module("projector", REPA.build_mlp(hidden, opts.proj_dim, opts.feature_dim, opts.rngs or iface.rngs, opts.dtype))
  return m
end

-- cos(a, b) over the last dim: a . b / (max(|a|, eps) max(|b|, eps))
local function cosine(a, b, eps)
  local d = C.dim(a)
  local na = O.maximum(O.norm(a, { d }), C.full({}, eps, C.dtype(a)))
  local nb = O.maximum(O.norm(b, { d }), C.full({}, eps, C.dtype(b)))
  return O.div(O.sum(O.mul(a, b), { d }), O.mul(na, nb))
end

-- {loss = diffusion + w repa, diffusion_loss, repa_loss}, each {B}
function REPA:loss(x, x_feature, cond, opts)
  if not A.is_tensor(x_feature) then
    error(("moonflow.interfaces.REPA.loss: x_feature must be a tensor, got %s"):format(type(x_feature)), 2)
  end
  local res = self.interface:loss(x, cond, { return_aux = true })
  local feats = res.features
  local h = feats and feats[self.repa_depth]
  if not A.is_tensor(h) then
    error(("moonflow.interfaces.REPA.loss: the network returned no features at depth %d (it has %d)"):format(
      self.repa_depth, feats and #feats or 0), 2)
  end
  local p = self.projector(h)
  local ps, fs = table.concat(p:shape(), ", "), table.concat(x_feature:shape(), ", ")
  if ps ~= fs then
    error(("moonflow.interfaces.REPA.loss: x_feature has shape {%s}, the projected features {%s}"):format(fs, ps), 2)
  end
  if C.dtype(x_feature) ~= C.dtype(p) then x_feature = O.to(x_feature, C.dtype(p)) end
  local repa = Interface.mean_flat(O.neg(cosine(x_feature, p, 1e-8)))
  local out = {
    loss = O.add(res.loss, O.mul(repa, self.repa_loss_weight)),
    diffusion_loss = res.loss,
    repa_loss = repa,
  }
  if opts and opts.return_aux then
    for k, v in pairs(res) do if k ~= "loss" then out[k] = v end end
  end
  return out
end

-- calling it: the same dictionary of losses
function REPA:forward(x, x_feature, cond, opts) return self:loss(x, x_feature, cond, opts) end

-- tangent and score pass through to the interface
function REPA:pred(...) return self.interface:pred(...) end
function REPA:score(...) return self.interface:score(...) end

function REPA:extra_repr()
  return ("interface=%s, repa_depth=%d, proj_dim=%d, feature_dim=%d, repa_loss_weight=%g"):format(
    self.interface.__name, self.repa_depth, self.proj_dim, self.feature_dim, self.repa_loss_weight)
end

return REPA
