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

-- device descriptions print as one line: Device(0: NAME, gpu, PLATFORM, ...)
local Device = { __name = "moonflow.Device" }
function Device.__tostring(d)
  local at = math.type(d.index) == "integer" and d.index >= 0 and d.index .. ": " or ""
  return ("Device(%s%s, %s, %s, fp64=%s, %.1f GiB)"):format(at, tostring(d.name), tostring(d.type),
    tostring(d.platform), tostring(d.fp64), (d.global_memory or 0) / 2 ^ 30)
end
function mf.device(...) return setmetatable(core.device(...), Device) end
function mf.devices(...)
  local list = core.devices(...)
  for _, d in ipairs(list) do setmetatable(d, Device) end
  return list
end
mf.stats, mf.reset_stats, mf.memory = core.stats, core.reset_stats, core.memory
mf.reset_peak, mf.synchronize, mf.clock = core.reset_peak, core.synchronize, core.clock

mf.no_grad = A.no_grad
mf.grad_enabled = A.grad_enabled

local lazy = {
  autograd = "moonflow.autograd", nn = "moonflow.nn", optim = "moonflow.optim",
  interfaces = "moonflow.interfaces", rf = "moonflow.rf", samplers = "moonflow.samplers",
  oracle = "moonflow.oracle", data = "moonflow.data", io = "moonflow.io", plot = "moonflow.plot",
  progress = "moonflow.app.progress", cli = "moonflow.app.cli", diffusion = "moonflow.diffusion",
  metrics = "moonflow.metrics", distill = "moonflow.distill", dist = "moonflow.dist",
}

return setmetatable(mf, {
  __submodules = lazy, -- the names __index loads on first use (the REPL completes them)
  __index = function(t, k)
    local name = lazy[k]
    if not name then return nil end
    local m = require(name)
    rawset(t, k, m)
    return m
  end,
})
