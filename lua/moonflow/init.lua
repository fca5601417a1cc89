-- moonflow: diffusion and flow-matching on OpenCL devices, driven from Lua.
-- Submodules load on first use: mf.nn, mf.optim, mf.interfaces, ...
local core = require "moonflow.core"
local T = require "moonflow.tensor"
local R = require "moonflow.random"
local A = require "moonflow.autograd"

local mf = { core = core, Tensor = core.methods }

for k, v in pairs(T) do mf[k] = v end
mf.Generator, mf.Rngs = R.Generator, R.Rngs
mf.manual_seed, mf.rand, mf.randn, mf.randint = R.manual_seed, R.rand, R.randn, R.randint
mf.default_generator = function() return R.default end

mf.devices, mf.device = core.devices, core.device
mf.stats, mf.reset_stats, mf.memory = core.stats, core.reset_stats, core.memory
mf.reset_peak, mf.synchronize, mf.clock = core.reset_peak, core.synchronize, core.clock

mf.no_grad = A.no_grad
mf.grad_enabled = A.grad_enabled

local lazy = {
  autograd = "moonflow.autograd", nn = "moonflow.nn", optim = "moonflow.optim",
  interfaces = "moonflow.interfaces", rf = "moonflow.rf", samplers = "moonflow.samplers",
  oracle = "moonflow.oracle", data = "moonflow.data", io = "moonflow.io", plot = "moonflow.plot",
  progress = "moonflow.app.progress", cli = "moonflow.app.cli", diffusion = "moonflow.diffusion",
  metrics = "moonflow.metrics",
}

return setmetatable(mf, {
  __index = function(t, k)
    local name = lazy[k]
    if not name then return nil end
    local m = require(name)
    rawset(t, k, m)
    return m
  end,
})
