-- Run configurations: a Lua file returning a table, `key=value` overrides
-- (nested with dots), and a stable Lua rendering written beside each run.
local Config = {}

-- Loads a config file; the file sees the standard libraries and nothing else.
function Config.load(path)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then error(("moonflow.config: cannot load %s: %s"):format(path, err), 0) end
  local ok, cfg = pcall(chunk)
  if not ok then error(("moonflow.config: %s failed: %s"):format(path, cfg), 0) end
  if type(cfg) ~= "table" then
    error(("moonflow.config: %s must return a table, got %s"):format(path, type(cfg)), 0)
  end
  return cfg
end

-- A table literal of an override, read as data (never run): {1, 2.5, "a",
-- true, b = {x = 1}}; bare words are strings. Returns value, next position.
local function parse_table(s, i)
  local function fail(what)
    error(("moonflow.config: cannot parse table value %s: %s at character %d"):format(s, what, i), 0)
  end
  local function skip() i = s:find("[^%s]", i) or #s + 1 end
  local function scalar()
    skip()
    if s:sub(i, i) == "{" then return parse_table(s, i) end
    local q = s:match('^"([^"\\]*)"', i) or s:match("^'([^'\\]*)'", i)
    if q then return q, i + #q + 2 end
    local w = s:match("^[^%s,{}=]+", i)
    if not w then fail("expected a value") end
    local v = w
    if w == "true" then v = true elseif w == "false" then v = false else v = tonumber(w) or w end
    return v, i + #w
  end
  local t, n = {}, 0
  i = i + 1
  while true do
    skip()
    if s:sub(i, i) == "}" then return t, i + 1 end
    if i > #s then fail("missing }") end
    local key = s:match("^([%a_][%w_]*)%s*=", i)
    if key then i = s:find("=", i, true) + 1 end
    local v
    v, i = scalar()
    if key then t[key] = v else n = n + 1; t[n] = v end
    skip()
    local c = s:sub(i, i)
    if c == "," or c == ";" then i = i + 1 elseif c ~= "}" then fail("expected , or }") end
  end
end

-- "3" -> 3, "true" -> true, "{1, 2}" -> {1, 2}, anything else stays a string
function Config.parse_value(s)
  if s == "true" then return true elseif s == "false" then return false elseif s == "nil" then return nil end
  local n = tonumber(s)
  if n then return n end
  local i = s:find("[^%s]")
  if i and s:sub(i, i) == "{" then
    local v, j = parse_table(s, i)
    if s:find("[^%s]", j) then
      error(("moonflow.config: cannot parse table value %s: text after the closing }"):format(s), 0)
    end
    return v
  end
  return s
end

-- Applies "a.b.c=value" to cfg (creating nested tables as needed).
function Config.override(cfg, assignment)
  local key, value = assignment:match("^([%w_%.]+)=(.*)$")
  if not key then
    error(("moonflow.config: override %q is not key=value"):format(assignment), 0)
  end
  local node, parts = cfg, {}
  for part in key:gmatch("[^%.]+") do parts[#parts + 1] = part end
  for i = 1, #parts - 1 do
    local k = tonumber(parts[i]) or parts[i]
    if node[k] == nil then node[k] = {} end
    if type(node[k]) ~= "table" then
      error(("moonflow.config: %s is a %s, cannot set %s inside it"):format(
        table.concat(parts, ".", 1, i), type(node[k]), key), 0)
    end
    node = node[k]
  end
  local last = parts[#parts]
  node[tonumber(last) or last] = Config.parse_value(value)
  return cfg
end

local function is_ident(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") end

-- Lua source for v, keys sorted, so equal configs render equally.
function Config.render(v, indent)
  indent = indent or ""
  local t = type(v)
  if t == "string" then return ("%q"):format(v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v == math.huge then return "math.huge" elseif v == -math.huge then return "-math.huge" end
    return ("%.17g"):format(v)
  end
  if t == "boolean" or t == "nil" then return tostring(v) end
  if t ~= "table" then return ("nil --[[ %s ]]"):format(t) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  if #keys == 0 then return "{}" end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  local inner = indent .. "  "
  local parts = {}
  for _, k in ipairs(keys) do
    local key = is_ident(k) and k or ("[" .. Config.render(k) .. "]")
    parts[#parts + 1] = inner .. key .. " = " .. Config.render(v[k], inner)
  end
  return "{\n" .. table.concat(parts, ",\n") .. ",\n" .. indent .. "}"
end

-- A deep copy (configs are plain data; metatables, e.g. JSON arrays', are dropped).
function Config.copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = Config.copy(x) end
  return c
end

-- Fills c's missing keys from defaults (copies), in place, and one level
-- into record tables both have (a list default, #v > 0, is taken whole or not).
function Config.fill(c, defaults)
  for k, v in pairs(defaults) do
    if c[k] == nil then
      c[k] = Config.copy(v)
    elseif type(v) == "table" and type(c[k]) == "table" and #v == 0 then
      for kk, vv in pairs(v) do if c[k][kk] == nil then c[k][kk] = Config.copy(vv) end end
    end
  end
  return c
end

------------------------------------------------------------------ checking
-- The schema of a completed training config. Every value is checked (type,
-- range, known keys) before anything is built, so a bad override or a
-- hostile checkpoint fails with a message instead of a huge allocation.
local INT_MAX = (1 << 31) - 1
local function where(path) return path == "" and "config" or path end
local function bad(path, fmt, ...)
  error(("moonflow.config: %s " .. fmt):format(where(path), ...), 0)
end
local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) == "table" then return "a table" end
  return tostring(v)
end

local function int(lo, hi)
  return function(v, path)
    if math.type(v) ~= "integer" or v < lo or v > hi then
      bad(path, "must be an integer in [%d, %d], got %s", lo, hi, show(v))
    end
  end
end
-- a finite number in [lo, hi] (open at the ends named in `open`: "(", ")", "()")
local function num(lo, hi, open)
  open = open or ""
  return function(v, path)
    local ok = type(v) == "number" and v == v and v > -math.huge and v < math.huge
      and (open:find("(", 1, true) and v > lo or not open:find("(", 1, true) and v >= lo)
      and (open:find(")", 1, true) and v < hi or not open:find(")", 1, true) and v <= hi)
    if not ok then
      bad(path, "must be a finite number in %s%s, %s%s, got %s", open:find("(", 1, true) and "(" or "[",
        ("%g"):format(lo), ("%g"):format(hi), open:find(")", 1, true) and ")" or "]", show(v))
    end
  end
end
local function bool(v, path)
  if type(v) ~= "boolean" then bad(path, "must be true or false, got %s", show(v)) end
end
local function str(choices)
  return function(v, path)
    if type(v) ~= "string" or v == "" or #v > 4096 then bad(path, "must be a non-empty string, got %s", show(v)) end
    if choices then
      for _, c in ipairs(choices) do if v == c then return end end
      bad(path, "must be one of %s, got %s", table.concat(choices, ", "), show(v))
    end
  end
end
-- a file name without directories (pictures inside the run folder)
local function filename(v, path)
  str()(v, path)
  if not v:match("^[%w_%-%.]+$") or v:match("^%.") then
    bad(path, "must be a plain file name (letters, digits, _ - .), got %s", show(v))
  end
end
local function is_table(v) return type(v) == "table" end
local function record(fields, required)
  return function(v, path)
    if not is_table(v) then bad(path, "must be a table, got %s", show(v)) end
    for k, x in pairs(v) do
      local f = type(k) == "string" and fields[k]
      if not f then
        local names = {}
        for n in pairs(fields) do names[#names + 1] = n end
        table.sort(names)
        local near = type(k) == "string" and require("moonflow.app.options").nearest(k, names)
        bad(path, "has unknown key %s (%sknown: %s)", show(k), near and ("did you mean %s? "):format(near) or "",
          table.concat(names, ", "))
      end
      f(x, (path == "" and "" or path .. ".") .. k)
    end
    for _, k in ipairs(required or {}) do
      if v[k] == nil then bad(path, "lacks %s", k) end
    end
  end
end
local function list(elem, lo, hi)
  return function(v, path)
    if not is_table(v) then bad(path, "must be a list, got %s", show(v)) end
    local n = 0
    for k in pairs(v) do
      if math.type(k) ~= "integer" or k < 1 then bad(path, "must be a list, has key %s", show(k)) end
      n = n + 1
    end
    if n ~= #v or n < lo or n > hi then bad(path, "must be a list of %d to %d entries, got %d", lo, hi, n) end
    for i, x in ipairs(v) do elem(x, path .. "[" .. i .. "]") end
  end
end
-- numbers nested in lists (mixture means, stds, weights)
local function numbers(v, path, depth)
  depth = depth or 0
  if type(v) == "number" then return num(-1e300, 1e300)(v, path) end
  if depth > 3 then bad(path, "nests too deeply") end
  list(function(x, p) numbers(x, p, depth + 1) end, 1, 1 << 20)(v, path)
end

local SIZE = 1 << 24 -- batch and sample counts
local data_names = { "two_moons", "checkerboard", "eight_gaussians", "spirals", "rings", "mixture",
  "gaussian_mixture", "npy", "idx", "fashion_mnist" }
local data = record({
  name = str(data_names), noise = num(0, 1e6), radius = num(0, 1e6), rings = int(1, 1000),
  means = numbers, stds = numbers, weights = numbers, path = str(), labels = str(), dir = str(),
  split = str { "train", "test" }, shuffle = bool, flip = bool,
}, { "name" })
local network = record {
  hidden = int(1, 1 << 16), depth = int(1, 1024), num_classes = int(1, 1 << 20), use_dt = bool,
  t_scale = num(0, 1e9, "("), freq_dim = int(2, 1 << 16), dim = int(1, 1 << 20), zero_init_out = bool,
  dtype = str { "f32", "f64" },
  -- image networks (mf.nn.DiT, mf.nn.ViT)
  kind = str { "VelocityMLP", "DiT", "ViT" }, input_size = int(1, 4096), patch_size = int(1, 4096),
  in_channels = int(1, 4096), hidden_size = int(1, 1 << 16), num_heads = int(1, 4096), mlp_ratio = num(0, 64, "("),
  encoder_depth = int(1, 1024),
}
local optimizer = record {
  kind = str { "AdamW" }, lr = num(0, 1e3, "("), weight_decay = num(0, 1e3), min_lr_ratio = num(0, 1),
  betas = list(num(0, 1, ")"), 2, 2), schedule = str { "cosine", "constant" }, warmup = int(0, INT_MAX),
  clip_grad_norm = num(0, 1e30),
}
-- feature_dim: required for points; image runs take the encoder's width
local repa = record {
  feature_dim = int(4, 1 << 16), repa_depth = int(1, 1024), proj_dim = int(1, 1 << 16),
  repa_loss_weight = num(0, 1e6),
}

-- interface and sampler options: the keys their constructors know
local function interface(v, path)
  if not is_table(v) then bad(path, "must be a table, got %s", show(v)) end
  str { "SiT", "EDM", "MeanFlow" }(v.kind, path .. ".kind")
  local defaults = require("moonflow.interfaces")[v.kind].DEFAULTS
  local fields = { kind = function() end }
  for k, d in pairs(defaults) do fields[k] = type(d) == "number" and num(-1e9, 1e9) or str() end
  fields.train_time_dist_type = str { "uniform", "lognormal", "logitnormal" }
  record(fields)(v, path)
end
local function eval(v, path)
  if not is_table(v) then bad(path, "must be a table, got %s", show(v)) end
  str { "Euler", "EulerJump", "Heun", "EulerMaruyama", "EDM" }(v.sampler, path .. ".sampler")
  local keys = require("moonflow.samplers")[v.sampler].keys
  local fields = { sampler = function() end, name = filename, picture = filename,
    num_sampling_steps = int(1, 100000), sampling_time_dist = str { "uniform", "exp" },
    sampling_time_kwargs = record { t_start = num(-1e9, 1e9), t_end = num(-1e9, 1e9), t_shift_base = num(-1e9, 1e9),
      t_shift_cur = num(-1e9, 1e9), sigma_min = num(-1e9, 1e9), sigma_max = num(-1e9, 1e9), rho = num(-1e9, 1e9) },
    diffusion_coeff = str(), guidance_scale = num(-1e3, 1e3) }
  for k in pairs(v) do
    if type(k) == "string" and fields[k] == nil and keys[k] then fields[k] = num(-1e9, 1e9) end
  end
  record(fields)(v, path)
end

local train = record({
  seed = int(0, math.maxinteger), data = data, network = network, interface = interface, optimizer = optimizer,
  ema = record { decay = num(0, 1), warmup = bool }, repa = repa, steps = int(1, INT_MAX), batch = int(1, SIZE),
  evals = list(eval, 1, 64), eval_n = int(2, SIZE), out = str(), log_every = int(1, INT_MAX),
  checkpoint_every = int(0, INT_MAX), plot_every = int(0, INT_MAX),
  -- image runs: the encoder of the metrics (and REPA's targets), label dropout
  -- for guidance, a samples_<step>.png grid every grid_every steps
  task = str { "generate", "classifier" }, encoder = str(), label_dropout = num(0, 1), grid_every = int(0, INT_MAX),
  -- image runs: the evals measured every eval_every steps into evals.csv
  eval_every = int(0, INT_MAX),
}, { "data", "network", "interface", "optimizer", "ema", "steps", "batch", "evals", "eval_n", "out" })

-- task = "classifier": a ViT on Fashion-MNIST (app/classifier.lua)
local classifier = record({
  seed = int(0, math.maxinteger), task = str { "classifier" }, data = data, network = network, optimizer = optimizer,
  steps = int(1, INT_MAX), batch = int(1, SIZE), eval_every = int(0, INT_MAX), test_n = int(1, 10000), out = str(),
  log_every = int(1, INT_MAX), checkpoint_every = int(0, INT_MAX),
}, { "data", "network", "optimizer", "steps", "batch", "out" })

function Config.check_classifier(cfg)
  classifier(cfg, "")
  if cfg.data.name ~= "fashion_mnist" then
    bad("data.name", "must be \"fashion_mnist\" for task=\"classifier\", got %s", show(cfg.data.name))
  end
  if cfg.network.kind ~= "ViT" then
    bad("network.kind", "must be \"ViT\" for task=\"classifier\", got %s", show(cfg.network.kind))
  end
  return cfg
end

-- The application trains on 2-D points (its pictures are scatter plots):
-- image data waits for an image model; a mixture must be 2-D. (npy data is
-- checked when loaded: its shape is in the file.)
local image_data = { fashion_mnist = true, idx = true }
local points = "the toy configs train on 2-D points: two_moons, checkerboard, eight_gaussians, spirals, rings, "
  .. "a mixture with 2-D means, or data.name=npy with an {N, 2} array"
function Config.check_points(d, net)
  if d.name == "fashion_mnist" and net and net.kind == "DiT" then return end
  if d.name == "fashion_mnist" then
    error(("moonflow.config: data.name=fashion_mnist needs an image model: network.kind = \"DiT\" "
      .. "(scripts/configs/fashion_sit.lua), got network.kind = %s; %s"):format(show(net and net.kind), points), 0)
  end
  if image_data[d.name] then
    error(("moonflow.config: data.name=%s needs an image model; %s"):format(d.name, points), 0)
  end
  if (d.name == "mixture" or d.name == "gaussian_mixture") and type(d.means) == "table" then
    local m = d.means[1]
    local dim = type(m) == "table" and #m or 1
    if dim ~= 2 then
      error(("moonflow.config: data.name=%s has points of dimension %d; %s"):format(d.name, dim, points), 0)
    end
  end
end

-- Checks a completed training config; raises "moonflow.config: <key> ..." on
-- the first bad value. Returns cfg.
function Config.check(cfg)
  train(cfg, "")
  Config.check_points(cfg.data, cfg.network)
  local image = cfg.data.name == "fashion_mnist"
  if image and cfg.network.kind ~= "DiT" then
    bad("network.kind", "must be \"DiT\" for data.name=fashion_mnist (or task=\"classifier\" with a ViT), got %s",
      show(cfg.network.kind))
  end
  if not image and (cfg.eval_every or 0) > 0 then
    bad("eval_every", "measures image runs (FD, floor, class accuracy into evals.csv); the 2-D configs draw "
      .. "their samples every plot_every steps, got eval_every=%d for data.name=%s", cfg.eval_every, cfg.data.name)
  end
  if image and cfg.repa and cfg.encoder == nil then
    bad("repa", "on images aligns with an encoder's tokens: set encoder = \"runs/fashion_encoder/encoder.safetensors\"")
  end
  if cfg.repa and not image and cfg.repa.feature_dim == nil then bad("repa", "lacks feature_dim") end
  if cfg.repa then
    if not image and cfg.repa.feature_dim % 4 ~= 0 then
      bad("repa.feature_dim", "must be a multiple of 4, got %d", cfg.repa.feature_dim)
    end
    local depth = cfg.network.depth or 4
    if cfg.repa.repa_depth and cfg.repa.repa_depth > depth then
      bad("repa.repa_depth", "%d is deeper than network.depth %d", cfg.repa.repa_depth, depth)
    end
  end
  return cfg
end

return Config
