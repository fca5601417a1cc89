local usage = [[usage: scripts/moonflow sample CHECKPOINT [options]

Samples from a checkpoint written by `moonflow train` (its EMA weights), draws
the samples over fresh data and prints their energy distance beside the floor.
  --sampler NAME   Euler, EulerJump, Heun, EulerMaruyama or EDM (default: the
                   config's first sampler)
  --steps N        number of sampling steps
  --n N            number of samples (default 2000)
  --out FILE       picture to write (default samples.png beside the checkpoint)
  --seed S         seed of the sampling noise (default: the config's seed)
  --raw            use the raw (non-EMA) weights]]

local function parse(args)
  local o = { ckpt = nil }
  local i = 1
  while i <= #args do
    local a = args[i]
    local key = a:match("^%-%-(.+)$")
    if key == "raw" then o.raw = true
    elseif key then
      local v = args[i + 1]
      if v == nil then error(("sample: --%s needs a value"):format(key), 0) end
      o[key] = v
      i = i + 1
    elseif not o.ckpt then o.ckpt = a
    else error(("sample: unexpected argument %q\n\n%s"):format(a, usage), 0) end
    i = i + 1
  end
  if not o.ckpt then error("sample: which checkpoint?\n\n" .. usage, 0) end
  return o
end

return {
  summary = "sample CHECKPOINT [--sampler heun --steps N --n 2000 --out samples.png]",
  usage = usage,
  run = function(args)
    local o = parse(args)
    local Sample = require "moonflow.app.sample"
    local r = Sample.run(o)
    print(("%s, %d samples: energy distance %.5f (floor %.5f, ratio %.2f)"):format(
      r.name, r.n, r.energy, r.floor, r.energy / r.floor))
    print("wrote " .. r.picture)
    return 0
  end,
}
