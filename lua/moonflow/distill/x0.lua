-- x0-predictions of any interface on the rectified-flow path
-- x_t = (1 - t) x0 + t eps (mf.rf), with the network's features:
--   SiT:      x0 = x_t - t v(x_t, t)                  (v = eps - x0)
--   MeanFlow: x0 = x_t - t u(x_t, t, r = t)           (u at r = t is v)
--   EDM:      x_t / (1 - t) = x0 + sigma eps with sigma = t / (1 - t),
--             so x0 = D(x_t / (1 - t), sigma)
-- Classifier-free guidance mixes the x0-predictions:
--   x0_w = x0_c + (w - 1) (x0_c - x0_null), the null label y = num_classes.
local A = require "moonflow.autograd"
local O = require "moonflow.ops"
local C = require "moonflow.core"
local rf = require "moonflow.rf"
local Interface = require "moonflow.interfaces.base"

local X = {}

-- EDM's sigma = t / (1 - t) needs t inside (0, 1)
X.EDM_T_MIN, X.EDM_T_MAX = 1e-4, 1 - 1e-4

local function kind_of(iface)
  if type(iface) ~= "table" then return nil end
  if type(iface.denoise) == "function" then return "edm" end
  if type(iface.sample_t_r) == "function" then return "meanflow" end
  if type(iface.call_network) == "function" then return "sit" end
  return nil
end
X.kind_of = kind_of

-- (x0, features) of interface `iface` at x_t, t ({B} tensor or number), cond
function X.predict(iface, x_t, t, cond, fn)
  fn = fn or "moonflow.distill.x0"
  local kind = kind_of(iface)
  if not kind then
    error(("%s: expected an interface (SiT, EDM or MeanFlow), got %s"):format(fn, type(iface)), 3)
  end
  local tb = iface:_t(t, x_t, fn)
  cond = Interface.cond_of(cond)
  if kind == "edm" then
    local tc = O.clamp(tb, X.EDM_T_MIN, X.EDM_T_MAX)
    local keep = O.sub(1, tc)
    local Dx, _, features = iface:denoise(O.div(x_t, Interface.bcast_right(keep, x_t)), O.div(tc, keep), cond)
    return Dx, features
  end
  local c = cond
  if kind == "meanflow" then c = Interface.with(cond, { dt = C.full({ (x_t:shape())[1] }, 0, C.dtype(x_t)) }) end
  local v, features = iface:call_network(x_t, tb, c)
  return rf.pred_x0_from_flow(v, x_t, tb), features
end

-- the null label of an interface's network for a batch of B (nil: unconditional)
local function null_cond(iface, cond, B)
  if cond == nil or cond.y == nil then return nil end
  local K = type(iface.network) == "table" and iface.network.num_classes
  if not K then return nil end
  return Interface.with(cond, { y = C.full({ B }, K, "i32") })
end

-- The guided x0-prediction (no gradient): x0_c + (w - 1)(x0_c - x0_null).
-- w = nil or 1, or no labels: the plain prediction, one network call.
function X.guided(iface, x_t, t, cond, w, fn)
  return A.no_grad(function()
    local x0 = X.predict(iface, x_t, t, cond, fn)
    if w == nil or w == 1 then return x0 end
    local nc = null_cond(iface, Interface.cond_of(cond), (x_t:shape())[1])
    if not nc then return x0 end
    local x0_null = X.predict(iface, x_t, t, nc, fn)
    return O.add(x0, O.mul(O.sub(x0, x0_null), w - 1))
  end)
end

return X
