-- mf.nn: modules over one flat parameter buffer.
local L = require "moonflow.nn.layers"

local nn = {
  Module = require "moonflow.nn.module",
  functional = require "moonflow.nn.functional",
}
for k, v in pairs(L) do nn[k] = v end
nn.VelocityMLP = require "moonflow.nn.velocity_mlp"
nn.F = nn.functional
return nn
