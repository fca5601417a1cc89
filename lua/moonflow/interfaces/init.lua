-- mf.interfaces: diffusion and flow-matching interfaces (diffuse_nnx API).
local Interface = require "moonflow.interfaces.base"
local REPA = require "moonflow.interfaces.repa"

return {
  Interface = Interface,
  SiT = require "moonflow.interfaces.sit",
  EDM = require "moonflow.interfaces.edm",
  MeanFlow = require "moonflow.interfaces.meanflow",
  REPA = REPA,
  DiT_REPA = REPA,
  build_mlp = REPA.build_mlp,
  mean_flat = Interface.mean_flat,
  bcast_right = Interface.bcast_right,
  t_shift = Interface.t_shift,
}
