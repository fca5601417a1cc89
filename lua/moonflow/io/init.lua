-- mf.io: safetensors files and whole checkpoints, npy and IDX readers.
-- Every loader validates the whole file before it creates a tensor (and a
-- checkpoint load checks every target before it changes any); every writer
-- goes through a temporary file renamed over the target.
local IO = {}
for _, part in ipairs { "safetensors", "checkpoint", "npy", "idx" } do
  for k, v in pairs(require("moonflow.io." .. part)) do IO[k] = v end
end
return IO
