-- mf.samplers: Euler, EulerJump, Heun, EulerMaruyama and the EDM stochastic
-- sampler over any interface (iface:pred, iface:score), with diffuse_nnx's
-- structure: sampler:sample(rng, net, x, opts), sample_t, forward, last_step.
local E = require "moonflow.samplers.euler"

return {
  Sampler = require "moonflow.samplers.base",
  Euler = E.Euler,
  EulerJump = E.EulerJump,
  Heun = require "moonflow.samplers.heun",
  EulerMaruyama = require "moonflow.samplers.euler_maruyama",
  EDM = require "moonflow.samplers.edm",
}
