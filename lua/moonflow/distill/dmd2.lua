-- DMD2 (Yin et al. 2024, "Improved Distribution Matching Distillation for
-- Fast Image Synthesis"), with fastgen's rectified-flow conventions (mf.rf):
-- x_t = (1 - t) x0 + t eps. A student generator x0 = G(x, t, cond) learns to
-- produce, in one to a few steps, the distribution of a frozen teacher.
--
-- One :step(real) runs
--   fake_score_updates x: the fake score's own loss (fake:loss) on detached
--     student samples (two time-scale rule: the fake score tracks the student);
--   1 x generator update: with t ~ sample_timesteps(sample_t_cfg),
--     x_t = add_noise(x0, eps, t), x0_real = teacher's x0-prediction (CFG at
--     guidance_scale), x0_fake = the fake score's,
--       grad = (x0_fake - x0_real) / (mean|x0 - x0_real| + 1e-6)   per sample
--       loss = 0.5 mean((x0 - sg(x0 - grad))^2)                   (fastgen's mean)
--     so d loss / d x0 = grad / numel(x0).
-- Multi-step students (student_t_list = {1, 0.75, ...}) train with backward
-- simulation: a rung t_k is drawn per sample (mf.rf.sample_from_t_list), and the
-- input at t_k is the student's own run from noise through the earlier rungs.
-- With gan_loss_weight > 0 a classifier head on the fake score's features
-- adds DMD2's non-saturating GAN loss (distill/gan.lua).
local mf = require "moonflow"
local A = require "moonflow.autograd"
local O = require "moonflow.ops"
local C = require "moonflow.core"
local rf = require "moonflow.rf"
local Interface = require "moonflow.interfaces.base"
local X = require "moonflow.distill.x0"
local G = require "moonflow.distill.gan"

local DMD2 = {}
DMD2.__index = DMD2
DMD2.__name = "moonflow.distill.DMD2"

local FN = "moonflow.distill.DMD2"
local function fail(fmt, ...) error((FN .. ": " .. fmt):format(...), 3) end

DMD2.DEFAULTS = {
  student_t_list = { 1.0 },
  sample_t_cfg = { time_dist_type = "uniform", min_t = 0.02, max_t = 0.98 },
  fake_score_updates = 5,
  gan_loss_weight = 0,
  student_pred_type = "flow",
  student_sample_type = "sde",
  optimizer = { lr = 1e-4, betas = { 0.0, 0.999 }, weight_decay = 0 },
}
local KNOWN = {
  teacher = true, student = true, fake = true, fake_init = true, student_t_list = true, sample_t_cfg = true,
  guidance_scale = true, fake_score_updates = true, gan_loss_weight = true, gan_feature_depth = true,
  gan_head = true, fake_per_rung = true, student_pred_type = true, student_sample_type = true, optimizer = true,
  fake_optimizer = true, gan_optimizer = true, rngs = true, shape = true,
}

local function is_module(v) return type(v) == "table" and type(v.flat_parameters) == "function" end
local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(v) == "table" and mt ~= nil and mt.__call ~= nil
end

-- A trainable copy of a module: the same structure over a fresh flat buffer
-- holding a copy of its weights (gradients on).
function DMD2.clone_network(net)
  if not is_module(net) then fail("clone_network: expected a module, got %s", type(net)) end
  local c = net:clone_structure(net:flat_parameters())
  rawset(c, "_flat", nil)
  rawset(c, "_layout", nil)
  c:flatten()
  c:train()
  return c
end

-- whether two modules have the same parameter names and shapes
local function same_architecture(a, b)
  if not (is_module(a) and is_module(b)) then return false end
  local sa, sb = a:state_dict(), b:state_dict()
  for k, v in pairs(sa) do
    local w = sb[k]
    if w == nil or table.concat(v:shape(), ",") ~= table.concat(w:shape(), ",") then return false end
  end
  for k in pairs(sb) do if sa[k] == nil then return false end end
  return true
end
DMD2.same_architecture = same_architecture

-- The interface of the teacher's class over `network` with the teacher's options.
local function like_teacher(teacher, network, rngs)
  local cls = getmetatable(teacher)
  local o = { network = network, rngs = rngs }
  for k in pairs(cls.DEFAULTS or {}) do o[k] = teacher[k] end
  return cls.new(o)
end

local function optimizer_of(v, module, what)
  if v ~= nil and type(v) == "table" and type(v.step) == "function" then return v end
  if v == false or not is_module(module) then return nil end
  if v ~= nil and type(v) ~= "table" then fail("%s must be an optimizer or a table of AdamW options, got %s", what, type(v)) end
  local o = {}
  for k, x in pairs(DMD2.DEFAULTS.optimizer) do o[k] = x end
  for k, x in pairs(v or {}) do o[k] = x end
  return mf.optim.AdamW(module, o)
end

local function check_t_list(l)
  if type(l) ~= "table" or #l < 1 then fail("student_t_list must be a non-empty list of times, got %s", type(l)) end
  for i, t in ipairs(l) do
    if type(t) ~= "number" or not (t > 0 and t <= 1) then
      fail("student_t_list[%d] = %s; each time must be in (0, 1]", i, tostring(t))
    end
    if i > 1 and not (t < l[i - 1]) then
      fail("student_t_list must decrease, but [%d] = %s follows %s", i, tostring(t), tostring(l[i - 1]))
    end
  end
end

-- DMD2{teacher, student, fake?, ...}: see the file's head; options
--   teacher                 a frozen interface (SiT, EDM, MeanFlow; an oracle network inside one)
--   student                 the generator network, net(x, t, cond) -> out
--   student_pred_type       "flow" (out = v, x0 = x - t v; a teacher copy starts as its x0-predictor) | "x0"
--   fake                    a trainable interface; default: the teacher's interface over a copy of
--                           its network. Its weights are set from the teacher's when the architectures
--                           match, unless fake_init = "scratch".
--   student_t_list          {1.0}: the student's times (decreasing, in (0, 1])
--   student_sample_type     "sde" (fresh noise between rungs) | "ode" (the implied noise, rf.x0_to_eps)
--   sample_t_cfg            mf.rf.sample_timesteps cfg of the distribution-matching times
--   guidance_scale          the teacher's classifier-free guidance (nil or 1: none)
--   fake_score_updates      fake-score updates per generator update (5)
--   gan_loss_weight         0: no GAN head; > 0: the generator's GAN loss weight
--   gan_feature_depth       which features the head reads (default the last)
--   optimizer, fake_optimizer, gan_optimizer   optimizers or AdamW option tables
--   rngs                    mf.Rngs: streams noise (z, eps) and time (t draws)
--   shape                   a sample's shape without the batch ({2}); else learnt from the data
--   fake_per_rung           an extension (false): the fake score takes the student's rung k as
--                           its label y = k - 1, modelling each rung's outputs apart. With one fake
--                           score for all rungs, a multi-step student can settle where the rungs'
--                           errors cancel in their mixture (rung 1 on one mode, the last on another).
function DMD2.new(opts)
  if type(opts) ~= "table" then fail("expected an options table {teacher, student, ...}, got %s", type(opts)) end
  for k in pairs(opts) do
    if not KNOWN[k] then
      local names = {}
      for n in pairs(KNOWN) do names[#names + 1] = n end
      table.sort(names)
      fail("unknown option %s (options: %s)", tostring(k), table.concat(names, ", "))
    end
  end
  local self = setmetatable({}, DMD2)
  local D = DMD2.DEFAULTS
  if not X.kind_of(opts.teacher) then fail("teacher must be an interface (SiT, EDM, MeanFlow), got %s", type(opts.teacher)) end
  if not callable(opts.student) then fail("student must be a network net(x, t, cond), got %s", type(opts.student)) end
  self.teacher, self.student = opts.teacher, opts.student
  self.rngs = opts.rngs or mf.Rngs(0)
  self.student_pred_type = opts.student_pred_type or D.student_pred_type
  if self.student_pred_type ~= "flow" and self.student_pred_type ~= "x0" then
    fail("student_pred_type must be \"flow\" or \"x0\", got %s", tostring(self.student_pred_type))
  end
  self.student_sample_type = opts.student_sample_type or D.student_sample_type
  if self.student_sample_type ~= "sde" and self.student_sample_type ~= "ode" then
    fail("student_sample_type must be \"sde\" or \"ode\", got %s", tostring(self.student_sample_type))
  end
  self.student_t_list = opts.student_t_list or D.student_t_list
  check_t_list(self.student_t_list)
  self.sample_t_cfg = opts.sample_t_cfg or D.sample_t_cfg
  if type(self.sample_t_cfg) ~= "table" then fail("sample_t_cfg must be a table, got %s", type(self.sample_t_cfg)) end
  rf.sample_timesteps(0, self.sample_t_cfg) -- checks the cfg now
  local w = opts.guidance_scale
  if w ~= nil and (type(w) ~= "number" or w ~= w) then fail("guidance_scale must be a number, got %s", tostring(w)) end
  self.guidance_scale = w
  local n = opts.fake_score_updates
  if n == nil then n = D.fake_score_updates end
  if math.type(n) ~= "integer" or n < 0 then fail("fake_score_updates must be an integer >= 0, got %s", tostring(n)) end
  self.fake_score_updates = n
  local gw = opts.gan_loss_weight or D.gan_loss_weight
  if type(gw) ~= "number" or not (gw >= 0) then fail("gan_loss_weight must be a number >= 0, got %s", tostring(gw)) end
  self.gan_loss_weight = gw
  if opts.shape ~= nil and type(opts.shape) ~= "table" then fail("shape must be a table, got %s", type(opts.shape)) end
  self.shape = opts.shape

  -- the fake score
  local fake = opts.fake
  local tnet = self.teacher.network
  if fake == nil then
    if not is_module(tnet) then
      fail("fake is missing and the teacher's network (%s) is not a module to copy; pass fake = an interface", type(tnet))
    end
    fake = like_teacher(self.teacher, DMD2.clone_network(tnet), self.rngs)
  elseif not X.kind_of(fake) or type(fake.loss) ~= "function" then
    fail("fake must be an interface with :loss (SiT, EDM, MeanFlow), got %s", type(fake))
  elseif opts.fake_init ~= "scratch" and same_architecture(fake.network, tnet) then
    fake.network:load_state_dict(tnet:state_dict())
  end
  if opts.fake_init ~= nil and opts.fake_init ~= "scratch" and opts.fake_init ~= "teacher" then
    fail("fake_init must be \"teacher\" or \"scratch\", got %s", tostring(opts.fake_init))
  end
  self.fake = fake
  self.fake_per_rung = opts.fake_per_rung and true or false
  if self.fake_per_rung then
    local K = fake.network.num_classes
    if math.type(K) ~= "integer" or K < #self.student_t_list then
      fail("fake_per_rung needs a fake network with num_classes >= %d (the rungs), got %s", #self.student_t_list, tostring(K))
    end
  end

  self.optimizer = optimizer_of(opts.optimizer, self.student, "optimizer")
  self.fake_optimizer = optimizer_of(opts.fake_optimizer, fake.network, "fake_optimizer")
  if gw > 0 then
    local H = fake.network.hidden_size
    self.gan_head = opts.gan_head or G.Head { hidden_size = H, depth = opts.gan_feature_depth, rngs = self.rngs,
      dtype = is_module(fake.network) and fake.network:dtype() or nil }
    self.gan_optimizer = optimizer_of(opts.gan_optimizer, self.gan_head, "gan_optimizer")
  end
  self.fake_updates_done, self.generator_updates_done = 0, 0
  return self
end
setmetatable(DMD2, { __call = function(_, opts) return DMD2.new(opts) end })

------------------------------------------------------------------ pieces
local function times(B, t, dt) return C.full({ B }, t, dt) end

-- the student's x0 at input x, time t ({B}): out, or x - t out for "flow"
function DMD2:student_x0(x, t, cond, net)
  local out = (net or self.student)(x, t, cond)
  if self.student_pred_type == "x0" then return out end
  return rf.pred_x0_from_flow(out, x, t)
end

-- the input at rung k + 1 from the student's x0 at rung k (input x, time t)
function DMD2:renoise(x0, x, t, t_next, g)
  local eps
  if self.student_sample_type == "ode" then eps = rf.x0_to_eps(x0, x, t)
  else eps = g:normal(x0:shape(), { dtype = C.dtype(x0) }) end
  return rf.add_noise(x0, eps, t_next)
end

-- Backward simulation without gradient: the inputs of rungs 1..k of t_list
-- from noise z, each rung's input the re-noised x0 of the one before.
function DMD2:rung_inputs(z, t_list, k, cond, g, net)
  local B, dt = (z:shape())[1], C.dtype(z)
  local xs = { z }
  A.no_grad(function()
    for i = 1, k - 1 do
      local t = times(B, t_list[i], dt)
      local x0 = self:student_x0(xs[i], t, cond, net)
      xs[i + 1] = self:renoise(x0, xs[i], t, times(B, t_list[i + 1], dt), g)
    end
  end)
  return xs
end

-- The student's training input: (x_in, t_in) for a batch of B. One rung:
-- noise at t_list[1]; several: t_in from sample_from_t_list(t_list ++ {0}) and
-- x_in each row's rung input from the student's own backward simulation.
function DMD2:student_input(B, shape, dt, cond)
  local tl = self.student_t_list
  local full = { B }
  for i, s in ipairs(shape) do full[i + 1] = s end
  local z = self.rngs.noise:normal(full, { dtype = dt })
  if #tl == 1 then return z, times(B, tl[1], dt), C.full({ B }, 0, "i32") end
  local list = {}
  for i, t in ipairs(tl) do list[i] = t end
  list[#list + 1] = 0
  local t_in = rf.sample_from_t_list(B, list, { generator = self.rngs.time, dtype = dt })
  local xs = self:rung_inputs(z, tl, #tl, cond, self.rngs.noise)
  local bshape = { B }
  for i = 1, #shape do bshape[i + 1] = 1 end
  local x_in, rung = xs[1], nil
  for k = 2, #tl do
    local hit = t_in:eq(times(B, tl[k], dt))
    x_in = O.where(O.reshape(hit, bshape), xs[k], x_in)
    rung = rung and O.add(rung, O.mul(hit, k - 1)) or O.mul(hit, k - 1)
  end
  return x_in, t_in, O.to(rung, "i32")
end

-- the fake score's condition: cond, or with fake_per_rung the rung as its label
function DMD2:fake_cond(cond, rung)
  if not self.fake_per_rung then return cond end
  if cond and cond.y ~= nil then fail("fake_per_rung: the data has labels y; the rung label would replace them") end
  return Interface.with(cond, { y = rung })
end

-- the batch's data and condition: a tensor, or {x = , y = }
local function unpack_batch(b)
  if A.is_tensor(b) then return b, nil end
  if type(b) == "table" and A.is_tensor(b.x) then return b.x, b.y and { y = b.y } or nil end
  fail("step: real_batch must be a tensor or {x = tensor, y = labels}, got %s", type(b))
end

-- The distribution-matching surrogate at fixed x0, t ({B}) and eps:
-- returns loss, {x_t, real, fake, grad, weight} (all but loss without gradient).
function DMD2:dm_loss(x0, t, eps, cond, fake_cond)
  if fake_cond == nil then fake_cond = cond end
  local x0d = x0:detach()
  local x_t = rf.add_noise(x0d, eps, t)
  local real, fake = A.no_grad(function()
    return X.guided(self.teacher, x_t, t, cond, self.guidance_scale, FN),
      (X.predict(self.fake, x_t, t, fake_cond, FN))
  end)
  local parts = A.no_grad(function()
    local w = O.div(1, O.add(Interface.mean_flat(O.sub(x0d, real):abs()), 1e-6))
    local grad = Interface.scale(w, O.sub(fake, real))
    return { x_t = x_t, real = real, fake = fake, grad = grad, weight = w, target = O.sub(x0d, grad) }
  end)
  local loss = O.mul(O.sub(x0, parts.target):square():mean(), 0.5)
  return loss, parts
end

-- noised features' logits from the GAN head (the fake network with gradient)
function DMD2:gan_logits(x, t, cond)
  local _, features = X.predict(self.fake, x, t, cond, FN)
  return self.gan_head(features)
end

------------------------------------------------------------------ training
-- one fake-score (and GAN head) update on fresh student samples; returns losses
function DMD2:fake_update(real, cond)
  if not self.fake_optimizer then fail("step: the fake score has no optimizer (its network has no parameters)") end
  local B, shape, dt = (real:shape())[1], self.shape, C.dtype(real)
  local x0, rung = A.no_grad(function()
    local x_in, t_in, k = self:student_input(B, shape, dt, cond)
    return self:student_x0(x_in, t_in, cond), k
  end)
  local fcond = self:fake_cond(cond, rung)
  self.fake_optimizer:zero_grad()
  if self.gan_optimizer then self.gan_optimizer:zero_grad() end
  local fl = self.fake:loss(x0, fcond).loss:mean()
  local total, dl = fl, nil
  if self.gan_head then
    local g = self.rngs.noise
    local t_r = rf.sample_timesteps(B, self.sample_t_cfg, { generator = self.rngs.time, dtype = dt })
    local t_f = rf.sample_timesteps(B, self.sample_t_cfg, { generator = self.rngs.time, dtype = dt })
    local xr = rf.add_noise(real, g:normal(real:shape(), { dtype = dt }), t_r)
    local xf = rf.add_noise(x0, g:normal(x0:shape(), { dtype = dt }), t_f)
    -- real samples have no rung: the null label under fake_per_rung
    local rcond = self.fake_per_rung and self:fake_cond(cond, C.full({ B }, self.fake.network.num_classes, "i32")) or cond
    dl = G.discriminator_loss(self:gan_logits(xr, t_r, rcond), self:gan_logits(xf, t_f, fcond))
    total = O.add(total, dl)
  end
  total:backward()
  self.fake_optimizer:step()
  if self.gan_optimizer then self.gan_optimizer:step() end
  self.fake_updates_done = self.fake_updates_done + 1
  return fl, dl
end

-- one generator update; returns loss, dm_loss, gan_generator_loss
function DMD2:generator_update(real, cond)
  if not self.optimizer then fail("step: the student has no optimizer (pass optimizer = ... for a non-module student)") end
  local B, shape, dt = (real:shape())[1], self.shape, C.dtype(real)
  local x_in, t_in, rung = self:student_input(B, shape, dt, cond)
  local x0 = self:student_x0(x_in, t_in, cond)
  local fcond = self:fake_cond(cond, rung)
  local t = rf.sample_timesteps(B, self.sample_t_cfg, { generator = self.rngs.time, dtype = dt })
  local eps = self.rngs.noise:normal(x0:shape(), { dtype = dt })
  local dm = self:dm_loss(x0, t, eps, cond, fcond)
  local loss, gl = dm, nil
  if self.gan_head then
    gl = G.generator_loss(self:gan_logits(rf.add_noise(x0, eps, t), t, fcond))
    loss = O.add(loss, O.mul(gl, self.gan_loss_weight))
  end
  self.optimizer:zero_grad()
  loss:backward()
  self.optimizer:step()
  self.generator_updates_done = self.generator_updates_done + 1
  return loss, dm, gl
end

-- :step(real_batch) -> {loss, dm_loss, fake_score_loss, gan_generator_loss?,
-- gan_discriminator_loss?} as scalar tensors (nothing read back);
-- fake_score_loss is the mean over this step's fake-score updates.
function DMD2:step(real_batch)
  local real, cond = unpack_batch(real_batch)
  if self.shape == nil then
    local s = real:shape()
    self.shape = { table.unpack(s, 2) }
  end
  local fsum, dsum
  for _ = 1, self.fake_score_updates do
    local fl, dl = self:fake_update(real, cond)
    fsum = fsum and O.add(fsum, fl) or fl
    if dl then dsum = dsum and O.add(dsum, dl) or dl end
  end
  local loss, dm, gl = self:generator_update(real, cond)
  local k = self.fake_score_updates
  local out = { loss = loss, dm_loss = dm, fake_score_loss = fsum and O.mul(fsum, 1 / k) or nil }
  if self.gan_head then
    out.gan_generator_loss = gl
    out.gan_discriminator_loss = dsum and O.mul(dsum, 1 / k) or nil
  end
  return out
end

------------------------------------------------------------------ sampling
-- :sample(rng, n, {cond, steps = #student_t_list, network, shape, dtype}) ->
-- {n, ...} samples: the student run from noise through the first `steps`
-- times of student_t_list (re-noising between them as in training).
-- rng: an mf.Generator or an mf.Rngs (its sample stream).
function DMD2:sample(rng, n, opts)
  opts = opts or {}
  if getmetatable(rng) and getmetatable(rng).__name == "moonflow.Rngs" then rng = rng.sample end
  if type(rng) ~= "table" or type(rng.normal) ~= "function" then
    fail("sample: rng must be an mf.Generator or an mf.Rngs, got %s", type(rng))
  end
  if math.type(n) ~= "integer" or n < 1 then fail("sample: n must be a positive integer, got %s", tostring(n)) end
  local tl = self.student_t_list
  local steps = opts.steps or #tl
  if math.type(steps) ~= "integer" or steps < 1 or steps > #tl then
    fail("sample: steps must be an integer in [1, %d] (the length of student_t_list), got %s", #tl, tostring(steps))
  end
  local net = opts.network or self.student
  local shape = opts.shape or self.shape
  if shape == nil then
    local d = type(net) == "table" and net.dim
    if not d then fail("sample: the sample shape is unknown; pass shape = {...} (or train a step first)") end
    shape = { d }
  end
  local dt = opts.dtype or "f32"
  local full = { n }
  for i, s in ipairs(shape) do full[i + 1] = s end
  local cond = opts.cond
  if A.is_tensor(cond) then cond = { y = cond } end
  return A.no_grad(function()
    local z = rng:normal(full, { dtype = dt })
    local xs = self:rung_inputs(z, tl, steps, cond, rng, net)
    return self:student_x0(xs[steps], times(n, tl[steps], dt), cond, net)
  end)
end

function DMD2:__tostring()
  return ("DMD2(student_t_list={%s}, fake_score_updates=%d, guidance_scale=%s, gan_loss_weight=%s)"):format(
    table.concat(self.student_t_list, ", "), self.fake_score_updates, tostring(self.guidance_scale),
    tostring(self.gan_loss_weight))
end

return DMD2
