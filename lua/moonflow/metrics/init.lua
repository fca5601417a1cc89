-- mf.metrics: sample quality.
--   energy_distance, mean_distance, energy_floor (metrics/energy.lua)
--   frechet_distance, moments (metrics/frechet.lua)
--   Encoder, fid_fashion, class_accuracy (metrics/encoder.lua)
local E = require "moonflow.metrics.energy"
local M = {}
for _, part in ipairs { "energy", "frechet", "encoder" } do
  for k, v in pairs(require("moonflow.metrics." .. part)) do
    if k ~= "block_elements" then M[k] = v end
  end
end
-- block_elements (the energy distance's block size) lives in energy.lua,
-- which reads it on every call: mf.metrics.block_elements reads and writes it there
return setmetatable(M, {
  __index = function(_, k) if k == "block_elements" then return E.block_elements end end,
  __newindex = function(t, k, v)
    if k == "block_elements" then E.block_elements = v else rawset(t, k, v) end
  end,
})
