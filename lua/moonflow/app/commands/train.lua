local usage = [[usage: scripts/moonflow train CONFIG.lua [key=value ...] [--overwrite]

Trains the model a config describes and writes into its output folder
(config `out`, default runs/<config name>):
  config.lua              the configuration actually run (overrides applied)
  log.csv                 step, loss, lr, time every log_every steps
  checkpoint.safetensors  model, EMA, optimizer, step and RNG states, the config
                          as JSON data (every checkpoint_every steps and at the end)
  samples_*.png           EMA-model samples over the data, one per sampler
  loss.png                the loss curve
and ends with a summary: time, final loss, energy distance of the samples to
fresh data beside its floor (two independent data sets of that size).
Image configs (data.name=fashion_mnist, network.kind=DiT) draw grids with one
row per class (samples_<sampler>.png, samples_<step>.png, every grid_every
steps and at the end) and report the Fréchet distance in the features of the
encoder named by `encoder`, its floor (test vs train) and the class accuracy
of the samples; a missing encoder is trained first with
scripts/configs/fashion_encoder.lua (out = its folder), except on resume=
(the run's figures came from the encoder that is gone). With eval_every=N
they also measure every N steps and append step,name,fd,floor,accuracy,seconds
to evals.csv (and at the end). REPA runs also write parts.csv and draw the
alignment loss beside the diffusion loss. task=classifier configs train a
ViT and write encoder.safetensors and accuracy.csv; distill={...} configs
distill a teacher checkpoint into a few-step student (DMD2).
Under mpirun -np P the run is data-parallel (batch split into P shards, rank 0
writes); classifier and distill runs are refused there.

key=value overrides any field, nested with dots:
  steps=500 batch=256 optimizer.lr=2e-3 interface.train_time_dist_type=uniform
Every key and value is checked (a typo names the nearest known key) before
the output folder is touched. A folder that holds an earlier run (config.lua,
log.csv or checkpoint.safetensors) is refused unless --overwrite (start
afresh there) or resume= (continue it) is given. The toy configs train on
2-D points (two_moons, checkerboard, eight_gaussians, spirals, rings, a 2-D
mixture, an {N, 2} npy file); fashion_mnist needs network.kind=DiT.
Data paths are stored absolute, so `moonflow sample` works from any folder.
One run at a time holds a folder (a lock on .moonflow.lock, dropped when the process ends);
a second run there fails at once.
resume=PATH continues from a checkpoint; the log after resuming (steps,
losses, time going on) equals that of an uninterrupted run with the same seed.
Example configs: scripts/configs/*.lua]]

return {
  summary = "train CONFIG.lua [key=value ...]: train, checkpoint, sample, draw",
  usage = usage,
  run = function(args)
    local Config = require "moonflow.app.config"
    local O = require "moonflow.app.options"
    local flags, pos = O.parse("train", args, { overwrite = O.flag })
    local path = pos[1]
    if not path or path:match("=") then error("train: which config?\n\n" .. usage, 0) end
    local cfg = Config.load(path)
    local resume
    for i = 2, #pos do
      local a = pos[i]
      local r = a:match("^resume=(.*)$")
      if r then resume = r else Config.override(cfg, a) end
    end
    if cfg.out == nil then
      cfg.out = "runs/" .. (path:match("([^/]+)%.lua$") or "run")
    end
    local Train = require "moonflow.app.train"
    local mf = require "moonflow"
    local r = Train.run(cfg, { resume = resume, overwrite = flags.overwrite, train_encoder = true, started = function(c)
      print(("moonflow train %s on %s -> %s"):format(path, mf.device().name, c.out))
    end })
    print(Train.summary(r))
    return 0
  end,
}
