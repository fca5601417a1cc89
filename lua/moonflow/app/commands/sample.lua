local O = require "moonflow.app.options"

local usage = [[usage: scripts/moonflow sample CHECKPOINT [options]

Samples from a checkpoint written by `moonflow train` (its EMA weights) and
measures the samples: energy distance beside its floor for 2-D points; FD,
floor and class accuracy for images. A distillation checkpoint samples its
student at each of its step counts (or --steps N; no --sampler, --guidance).
Works from any folder: the checkpoint records its data (absolute paths).
  --sampler NAME   Euler, EulerJump, Heun, EulerMaruyama or EDM (default: the
                   config's first sampler); SiT checkpoints take Euler, Heun,
                   EulerMaruyama; EDM ones Euler, Heun, EulerMaruyama, EDM;
                   MeanFlow ones EulerJump, Euler, Heun
  --steps N        number of sampling steps (1 to 100000)
  --n N            number of samples (default: the config's eval_n)
  --out FILE       picture to write (default samples.png beside the checkpoint)
  --seed S         seed of the sampling noise (default: the config's seed)
  --guidance S     classifier-free guidance scale of image checkpoints
                   (default: the config's first eval's; 1 = none)
  --encoder PATH   the encoder of an image checkpoint's FD and class accuracy
                   (default: the config's `encoder`)
  --raw            use the raw (non-EMA) weights
  --save           also write the samples as FILE.npy and FILE.safetensors
                   (tensor "samples") beside the picture
Progress goes to stderr: a bar on a terminal, otherwise a line every few seconds.]]

local spec = {
  sampler = O.choice { "Euler", "EulerJump", "Heun", "EulerMaruyama", "EDM" },
  steps = O.int(1, 100000),
  n = O.int(2, 1 << 24),
  out = O.string,
  seed = O.int(0, math.maxinteger),
  guidance = O.number(-1000, 1000),
  encoder = O.string,
  raw = O.flag,
  save = O.flag,
}

local function parse(args)
  local o, pos = O.parse("sample", args, spec)
  if #pos == 0 then error("sample: which checkpoint?\n\n" .. usage, 0) end
  if #pos > 1 then error(("sample: unexpected argument %q\n\n%s"):format(pos[2], usage), 0) end
  o.ckpt = pos[1]
  return o
end

return {
  summary = "sample CHECKPOINT [--sampler heun --steps N --n 2000 --out samples.png --save]",
  usage = usage,
  parse = parse,
  run = function(args)
    local o = parse(args)
    local Sample = require "moonflow.app.sample"
    local r = Sample.run(o)
    for _, e in ipairs(r.results or { r }) do print(Sample.line(e)) end
    for _, p in ipairs(r.wrote) do print("wrote " .. p) end
    if r.save_error then error(r.save_error, 0) end
    return 0
  end,
}
