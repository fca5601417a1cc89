-- Networks whose interface predictions are the oracle's exact fields, with
-- the protocol every moonflow network follows: net(x, t, cond) -> out, features.
-- Built from differentiable ops, so backward and jvp work through them.
--   "sit":      out = v(x_t, t), the velocity (SiT: c_in = c_out = 1, c_skip = 0, c_noise = t)
--   "edm":      called as net(c_in x, c_noise(sigma)) with c_in = 1 / sqrt(sigma^2 + xs^2),
--               c_noise = log(sigma) / 4; out = F with c_skip x + c_out F = D(x; sigma)
--   "meanflow": out = u(x_t, t, r), r = t - cond.dt (one Gaussian, or labels
--               that pick one component each)
local mf = require "moonflow"

local Net = {}
Net.__index = Net
Net.__name = "moonflow.oracle.Network"

local kinds = { sit = true, edm = true, meanflow = true }

function Net:parameters() return {} end
function Net:named_parameters() return {} end
function Net:train() self.training = true; return self end
function Net:eval() self.training = false; return self end

-- t as a {B} tensor of x's dtype
local function times(t, x, what)
  local B, dt = x:shape()[1], x:dtype()
  if type(t) == "number" then return mf.full({ B }, t, { dtype = dt }) end
  if not mf.is_tensor(t) then
    error(("moonflow.oracle.network: %s must be a number or a {B} tensor, got %s"):format(what, type(t)), 3)
  end
  if t:dtype() ~= dt then t = t:to(dt) end
  return t:reshape { B }
end

function Net.__call(self, x, t, cond)
  self.calls = self.calls + 1
  local gm = self.mixture
  t = times(t, x, "t")
  if self.kind == "sit" then
    return gm:velocity(x, t, cond), {}
  elseif self.kind == "edm" then
    local xs = self.x_sigma
    local sigma = (t * 4):exp()                                -- c_noise = log(sigma) / 4
    local B = x:shape()[1]
    local scale = (sigma:square() + xs * xs):sqrt()              -- 1 / c_in
    local shape = { B }
    for i = 2, x:dim() do shape[i] = 1 end
    return gm:edm_raw(x * scale:reshape(shape), sigma, xs, cond), {}
  end
  local r = t
  if cond and cond.dt ~= nil then r = t - times(cond.dt, x, "cond.dt") end
  if gm.num_components == 1 then return gm:average_velocity(x, t, r), {} end
  return gm:_labelled_average_velocity(x, t, r, cond), {}
end

return function(gm, kind, opts)
  if not kinds[kind] then
    error(("moonflow.oracle.network: kind must be \"sit\", \"edm\" or \"meanflow\", got %s"):format(tostring(kind)), 3)
  end
  opts = opts or {}
  local xs = opts.x_sigma or 0.5
  if type(xs) ~= "number" or not (xs > 0) then
    error(("moonflow.oracle.network: x_sigma must be a positive number, got %s"):format(tostring(xs)), 3)
  end
  return setmetatable({ mixture = gm, kind = kind, x_sigma = xs, num_classes = gm.num_classes,
    hidden_size = gm.dim, calls = 0, training = false }, Net)
end
