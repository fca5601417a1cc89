-- Image runs of `moonflow train`: Fashion-MNIST through a DiT, class
-- conditional with label dropout, sampled with classifier-free guidance and
-- measured by a moonflow-trained encoder (Fréchet distance, its floor, class
-- accuracy); pictures are grids with one row per class.
local mf = require "moonflow"
local Config = require "moonflow.app.config"

local Image = {}

Image.class_names = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
  "Ankle boot" }

-- whether a (completed) config trains on images
function Image.is_image(cfg)
  return type(cfg.data) == "table" and cfg.data.name == "fashion_mnist"
end

---------------------------------------------------------------- data
-- A source over mf.data.fashion_mnist whose :batch(n) returns x {n, 1, 28, 28}
-- in [-1, 1] and y i32 labels, with the underlying source's state for resumes.
local Source = {}
Source.__index = Source

function Source:batch(n)
  local x, y = self.src:batch(n)
  if x:dim() == 3 then x = x:reshape({ n, 1, x:shape()[2], x:shape()[3] }) end
  return x, y
end
function Source:get_state() return self.src.get_state and self.src:get_state() or nil end
function Source:set_state(s) if s ~= nil and self.src.set_state then self.src:set_state(s) end end

function Image.data_source(cfg, rngs, split)
  local d = cfg.data
  local o = { split = split or d.split or "train", rngs = rngs }
  if d.flip then o.flip = true end
  if d.dir then o.dir = d.dir end
  if d.path then o.path = d.path end
  local src = mf.data.fashion_mnist(o)
  local size = cfg.network.input_size or 28
  return setmetatable({ src = src, name = "fashion_mnist", num_classes = 10, shape = { 1, size, size },
    dim = size * size }, Source)
end

---------------------------------------------------------------- network
-- The mf.nn.DiT options of a config: Fashion-MNIST's shape and classes by
-- default; MeanFlow adds the dt embedding and t_scale 1 as in the toy configs
-- (its target differentiates u in t).
function Image.network_options(cfg)
  local n = Config.copy(cfg.network)
  n.kind, n.hidden = nil, nil -- (hidden: the toy networks' default width, filled in by Train.complete)
  n.input_size = n.input_size or 28
  n.patch_size = n.patch_size or 4
  n.in_channels = n.in_channels or 1
  n.hidden_size = n.hidden_size or 128
  n.depth = n.depth or 4
  n.num_heads = n.num_heads or 4
  n.mlp_ratio = n.mlp_ratio or 4
  if n.num_classes == nil then n.num_classes = 10 end
  if (cfg.interface.kind or "SiT") == "MeanFlow" then
    if n.use_dt == nil then n.use_dt = true end
    if n.t_scale == nil then n.t_scale = 1 end
  end
  return n
end

function Image.build_network(cfg, rngs)
  local n = Image.network_options(cfg)
  n.rngs = rngs
  return mf.nn.DiT(n)
end

-- The shapes of the DiT's parameters, computed without building it:
-- x_embedder.proj Linear(p p C, H); t_embedder (and dt_embedder) Linear(256, H),
-- Linear(H, H); y_embedder table {classes + 1, H}; per block qkv Linear(H, 3H),
-- proj Linear(H, H), mlp Linear(H, floor(r H)), Linear(floor(r H), H),
-- adaLN Linear(H, 6H); final_layer Linear(H, p p C), adaLN Linear(H, 2H).
function Image.param_shapes(cfg)
  local n = Image.network_options(cfg)
  local H, P = n.hidden_size, n.patch_size * n.patch_size * n.in_channels
  local inner = math.floor(H * n.mlp_ratio)
  local s = {}
  local function linear(i, o) s[#s + 1] = { o, i }; s[#s + 1] = { o } end
  linear(P, H)
  linear(256, H); linear(H, H)
  if n.num_classes then s[#s + 1] = { n.num_classes + 1, H } end
  if n.use_dt then linear(256, H); linear(H, H) end
  for _ = 1, n.depth do
    linear(H, 3 * H); linear(H, H); linear(H, inner); linear(inner, H); linear(H, 6 * H)
  end
  linear(H, P); linear(H, 2 * H)
  return s
end

---------------------------------------------------------------- encoder
-- The encoder a config names (a path), trained first when missing and
-- opts.train_encoder is set: it runs the encoder config (default
-- scripts/configs/fashion_encoder.lua) with out = the encoder's folder.
-- Never for a resumed run: its measures so far were taken by the encoder
-- that is gone, and a new one would not continue them.
function Image.ensure_encoder(cfg, opts)
  local path = cfg.encoder
  if path == nil then return nil end
  local f = io.open(path, "rb")
  if f then f:close(); return path end
  local dir, name = path:match("^(.*)/([^/]+)$")
  local root = os.getenv("MOONFLOW_ROOT") or "."
  local encoder_cfg = root .. "/scripts/configs/fashion_encoder.lua"
  local how = ("scripts/moonflow train scripts/configs/fashion_encoder.lua out=%s"):format(dir or ".")
  if opts and opts.resume then
    error(("moonflow.train: encoder %s not found; the run resumed from %s measured with it: put it back, "
      .. "or name another with encoder=PATH (its figures will not continue the run's), or train one: %s")
      :format(path, opts.resume, how), 0)
  end
  if not (opts and opts.train_encoder) or name ~= "encoder.safetensors" then
    error(("moonflow.train: encoder %s not found; train it first: %s"):format(path, how), 0)
  end
  print(("moonflow train: encoder %s not found; training it first (%s)"):format(path, how))
  local ecfg = Config.load(encoder_cfg)
  ecfg.out = dir or "."
  local Classifier = require "moonflow.app.classifier"
  local r = Classifier.run(ecfg, { overwrite = opts.overwrite })
  print(Classifier.summary(r))
  return path
end

local encoders = {}
-- the loaded encoder of a path (loaded once per process)
function Image.encoder(path)
  if path == nil then return nil end
  if not encoders[path] then encoders[path] = mf.metrics.Encoder.load(path) end
  return encoders[path]
end

-- REPA's target: the frozen encoder's tokens {B, N, F} of the clean batch
function Image.repa_features(encoder, x)
  return mf.no_grad(function() return encoder:tokens(x):detach() end)
end

---------------------------------------------------------------- training
-- Labels with classifier-free guidance's dropout: each replaced by the null
-- label (num_classes) with probability p, drawn from rngs.label_dropout.
function Image.drop_labels(y, p, rng, null)
  if not p or p <= 0 then return y end
  local n = y:shape()[1]
  local m = rng:uniform({ n }):lt(p)
  return mf.where(m, mf.full({ n }, null, { dtype = "i32" }), y)
end

-- The condition of a training batch: SiT and EDM drop labels here
-- (cfg.label_dropout); MeanFlow drops them itself (interface.cond_drop_ratio).
function Image.train_cond(cfg, net, y, rngs)
  if not net.num_classes then return nil end
  if (cfg.interface.kind or "SiT") == "MeanFlow" then return { y = y } end
  return { y = Image.drop_labels(y, cfg.label_dropout, rngs.label_dropout, net.num_classes) }
end

---------------------------------------------------------------- evaluation
-- labels 0, 1, ..., 9, 0, 1, ... for n samples (i32, on the device)
function Image.cycle_labels(n, classes)
  local t = {}
  for i = 1, n do t[i] = (i - 1) % classes end
  return mf.tensor(t, { dtype = "i32" })
end

-- samples of the first `per_class` of each class as a {classes * per_class, C, H, W}
-- tensor, class by class (samples were drawn with cycling labels)
function Image.by_class(x, classes, per_class)
  local n = x:shape()[1]
  per_class = math.min(per_class, n // classes)
  local idx = {}
  for c = 0, classes - 1 do
    for k = 0, per_class - 1 do idx[#idx + 1] = k * classes + c end
  end
  return x:index_select(1, mf.tensor(idx, { dtype = "i32" })), per_class
end

-- a grid picture with one row per class and the class names beside them
function Image.grid(path, x, classes, per_class, title)
  local imgs, k = Image.by_class(x, classes, per_class or 10)
  local names = {}
  for c = 1, classes do names[c] = Image.class_names[c] or tostring(c - 1) end
  return mf.plot.grid(path, imgs, { nrow = k, row_labels = names, title = title, range = { -1, 1 } })
end

-- the sampler and sample() options of an eval entry
local function sampler_of(ev)
  local kind = ev.sampler or "Euler"
  local sopts = Config.copy(ev)
  sopts.sampler, sopts.picture, sopts.name, sopts.guidance_scale = nil, nil, nil, nil
  return mf.samplers[kind](sopts), kind
end

-- n samples from model with labels cycling through the classes, in chunks
-- of `chunk` (memory), with the eval's guidance scale. opts.callback sees
-- the steps of all chunks as one count (info.i of info.steps).
function Image.sample(ev, model, net, rngs, n, opts)
  opts = opts or {}
  local sampler = sampler_of(ev)
  local shape = { net.in_channels, net.input_size, net.input_size }
  local classes = net.num_classes
  local labels = classes and Image.cycle_labels(n, classes) or nil
  local chunk = opts.chunk or 500
  local chunks = (n + chunk - 1) // chunk
  local parts = {}
  for i = 1, n, chunk do
    local k = math.min(chunk, n - i + 1)
    local noise = rngs.sample:normal({ k, shape[1], shape[2], shape[3] })
    local so, cb, done = {}, opts.callback, #parts
    if cb then
      so.callback = function(info)
        return cb(setmetatable({ i = done * info.steps + info.i, steps = chunks * info.steps }, { __index = info }))
      end
    end
    if labels then
      so.cond = { y = labels:narrow(1, i, k):contiguous() }
      if ev.guidance_scale and ev.guidance_scale ~= 1 then so.guidance_scale = ev.guidance_scale end
    end
    parts[#parts + 1] = mf.no_grad(function() return sampler:sample(rngs.sample, model, noise, so) end)
  end
  local x = #parts == 1 and parts[1] or mf.cat(parts, 1)
  return x, labels
end

-- FD, floor and class accuracy of samples (with their labels) in the encoder's features
function Image.measure(x, labels, encoder_path, n, data_dir)
  if encoder_path == nil then return {} end
  local enc = Image.encoder(encoder_path)
  local fd = mf.metrics.fid_fashion(x, { encoder = enc, reference_split = "test", n = n or x:shape()[1],
    path = data_dir })
  local r = { fd = fd.fd, floor = fd.floor }
  if labels then r.accuracy = mf.metrics.class_accuracy(x, labels, enc) end
  return r
end

-- The image evals: for each configured sampler, eval_n samples, a grid
-- (samples_<name>.png) and the metrics. Returns a list of
-- {name, samples, labels, fd, floor, accuracy, picture}.
function Image.evaluate(cfg, make_model, ema_net, rngs, out, opts)
  opts = opts or {}
  local n = opts.n or cfg.eval_n
  local model = make_model(ema_net)
  local results = {}
  for _, ev in ipairs(opts.evals or cfg.evals) do
    local kind = ev.sampler or "Euler"
    local x, labels = Image.sample(ev, model, ema_net, rngs, n, { callback = opts.callback })
    local name = ev.name or ("%s_%dsteps"):format(kind:lower(), ev.num_sampling_steps or 0)
    if ev.guidance_scale and ev.guidance_scale ~= 1 and not ev.name then
      name = name .. ("_cfg%g"):format(ev.guidance_scale)
    end
    local pic = ev.picture or ("samples_" .. name .. ".png")
    if out then pic = out .. "/" .. pic end
    Image.grid(pic, x, ema_net.num_classes or 1, 10, name)
    local r = Image.measure(x, labels, opts.encoder or cfg.encoder, n, cfg.data.path or cfg.data.dir)
    r.name, r.samples, r.labels, r.picture, r.n = name, x, labels, pic, n
    results[#results + 1] = r
  end
  return results
end

-- samples_<step>.png: a grid of 10 samples per class by the first sampler
function Image.step_grid(cfg, make_model, ema_net, rngs, out, step)
  local classes = ema_net.num_classes or 1
  local x = Image.sample(cfg.evals[1], make_model(ema_net), ema_net, rngs, 10 * classes)
  local path = ("%s/samples_%d.png"):format(out, step)
  Image.grid(path, x, classes, 10, ("step %d"):format(step))
  return path
end

-- one summary line of an image eval
function Image.line(e)
  if e.fd == nil then return ("  %-22s %d samples (no encoder: no FD)"):format(e.name, e.n or 0) end
  local s = ("  %-22s FD %.3f  (floor %.3f)"):format(e.name, e.fd, e.floor)
  if e.accuracy then s = s .. ("  class accuracy %.1f%%"):format(100 * e.accuracy) end
  return s
end

return Image
