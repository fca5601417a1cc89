-- `moonflow train` with task = "classifier": a ViT (mf.nn.ViT) trained by
-- cross-entropy on Fashion-MNIST, its test accuracy measured at evals, and
-- written as <out>/encoder.safetensors (mf.metrics.Encoder.save), the
-- encoder of the image metrics and of REPA.
local mf = require "moonflow"
local Config = require "moonflow.app.config"
local Progress = require "moonflow.app.progress"
local Image = require "moonflow.app.image"

local Classifier = {}

Classifier.defaults = {
  seed = 0,
  task = "classifier",
  data = { name = "fashion_mnist", flip = true },
  network = { kind = "ViT", input_size = 28, patch_size = 4, in_channels = 1, hidden_size = 128, depth = 4,
    num_heads = 4, mlp_ratio = 4, num_classes = 10 },
  optimizer = { kind = "AdamW", lr = 1e-3, weight_decay = 0.05, betas = { 0.9, 0.999 }, schedule = "cosine",
    warmup = 200, clip_grad_norm = 1.0 },
  steps = 3000,
  batch = 128,
  eval_every = 1000,
  test_n = 10000,
  out = "runs/fashion_encoder",
  log_every = 50,
  checkpoint_every = 500,
}

function Classifier.complete(cfg) return Config.fill(Config.copy(cfg), Classifier.defaults) end

function Classifier.build(cfg, rngs)
  local n = Config.copy(cfg.network)
  n.kind = nil
  n.rngs = rngs
  return mf.nn.ViT(n)
end

-- the mean cross-entropy of a batch (F.cross_entropy may return per-sample values)
local function loss_of(net, x, y)
  local logits = net(x)
  local l = mf.nn.F.cross_entropy(logits, y)
  if l:dim() > 0 then l = l:mean() end
  return l
end

-- Fraction of the first n test images (x, y: the whole split, in order)
-- whose largest logit is their label's: logit_y >= max_k logit_k, on the
-- device in batches of 500, one read.
function Classifier.accuracy(net, x_all, y_all, n)
  local correct, seen = nil, 0
  mf.no_grad(function()
    while seen < n do
      local k = math.min(500, n - seen)
      local x, y = x_all:narrow(1, seen + 1, k), y_all:narrow(1, seen + 1, k)
      local logits = net(x)
      local at_y = logits:gather(2, y:reshape({ k, 1 }))
      local hit = at_y:ge(logits:max(2, true)):sum()
      correct = correct and correct + hit or hit
      seen = seen + k
    end
  end)
  return correct:item() / n
end

-- Trains per cfg; opts: resume (a checkpoint path), overwrite, started (called
-- with the checked config before anything is written).
function Classifier.run(cfg, opts)
  opts = opts or {}
  local Train = require "moonflow.app.train"
  cfg = Config.check_classifier(Classifier.complete(cfg))
  Train.absolute_paths(cfg)
  local out = cfg.out
  local rngs = mf.Rngs(cfg.seed)
  local data = Image.data_source(cfg, rngs, "train")
  -- the test split in order: every eval scores the same first test_n images
  local test_x, test_y = mf.data.fashion_mnist({ split = "test", path = cfg.data.path or cfg.data.dir }):all()
  local net = Classifier.build(cfg, rngs)
  local ocfg, total = cfg.optimizer, cfg.steps
  local opt = mf.optim.AdamW(net, {
    lr = function(step) return Train.lr_at(ocfg, step, total) end,
    weight_decay = ocfg.weight_decay, betas = ocfg.betas, max_grad_norm = ocfg.clip_grad_norm,
  })
  local start, window = 0, nil
  if opts.resume then
    local ck = mf.io.load(opts.resume, { model = net, optim = opt, rngs = rngs })
    start = math.tointeger(ck.step)
    if not start or start < 0 or start > total then
      error(("moonflow.train: %s: step %s is not a step count up to steps=%d"):format(opts.resume, tostring(ck.step),
        total), 0)
    end
    window = Progress.check_state(ck.progress, opts.resume)
    if ck.data ~= nil then data:set_state(ck.data) end
  end
  local lock, log = Train.open_folder(cfg, opts, start, "step,loss,lr,time")
  local log_path, acc_path = out .. "/log.csv", out .. "/accuracy.csv"
  local acc_log = Train.log_file(acc_path, start, cfg.eval_every, total, "step,test_accuracy")
  local progress = Progress.new { total = total, every = cfg.log_every, start = start, state = window }
  local ckpt = out .. "/checkpoint.safetensors"
  local accuracy
  for step = start + 1, total do
    local x, y = data:batch(cfg.batch)
    local loss = loss_of(net, x, y)
    opt:zero_grad()
    loss:backward()
    opt:step()
    local shown = progress:update(step, loss)
    local elapsed = progress:elapsed()
    if step == total or (cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0) then
      mf.io.save(ckpt, { model = net, optim = opt, step = step, rngs = rngs, config = Config.copy(cfg),
        progress = progress:state(elapsed), data = data:get_state() })
    end
    if shown then
      log:write(("%d,%.7g,%.7g,%.3f\n"):format(step, shown, Train.lr_at(ocfg, step, total), elapsed))
      log:flush()
    end
    if step == total or (cfg.eval_every > 0 and step % cfg.eval_every == 0) then
      accuracy = Classifier.accuracy(net, test_x, test_y, cfg.test_n)
      acc_log:write(("%d,%.6f\n"):format(step, accuracy))
      acc_log:flush()
      print(("step %d: test accuracy %.2f%% (%d images)"):format(step, 100 * accuracy, cfg.test_n))
    end
  end
  log:close()
  acc_log:close()
  if accuracy == nil then accuracy = Classifier.accuracy(net, test_x, test_y, cfg.test_n) end
  local encoder = out .. "/encoder.safetensors"
  mf.metrics.Encoder.save(encoder, net, { test_accuracy = ("%.6f"):format(accuracy), steps = tostring(total),
    test_n = tostring(cfg.test_n) })
  local losses = {}
  for line in io.lines(log_path) do
    local st, l = line:match("^(%d+),([^,]+)")
    if st then losses[#losses + 1] = { tonumber(st), tonumber(l) } end
  end
  mf.plot.curve(out .. "/loss.png", losses, { title = "cross-entropy", xlabel = "step", ylabel = "loss" })
  lock:unlock()
  return { out = out, time = progress:elapsed(), final_loss = losses[#losses] and losses[#losses][2],
    accuracy = accuracy, test_n = cfg.test_n, encoder = encoder, checkpoint = ckpt, log = log_path,
    accuracy_log = acc_path, config = out .. "/config.lua", loss_picture = out .. "/loss.png", classifier = true }
end

function Classifier.summary(r)
  local lines = {
    ("trained in %s, final loss %.5f"):format(Progress.hms(r.time), r.final_loss or 0 / 0),
    ("  test accuracy %.2f%% (%d images)"):format(100 * r.accuracy, r.test_n),
    "wrote:",
  }
  for _, p in ipairs { r.config, r.log, r.accuracy_log, r.checkpoint, r.loss_picture, r.encoder } do
    lines[#lines + 1] = "  " .. p
  end
  return table.concat(lines, "\n")
end

return Classifier
