-- MeanFlow against diffuse_nnx's MeanFlowInterface.loss, recomputed in Lua
-- doubles on fixed inputs: a deterministic network whose u and du/dt are
-- closed forms, the same random draws, per-sample losses to 1e-12 relative
-- (f64) and 1e-6 (f32). The reference:
--   (t, r) = sample_t_r (never shifted), n = sample_n
--   y = null label when absent, neg_y = null label when absent
--   v = n - x; unless (w = 1 and k = 0): v~ = w v + (1 - w - k) u(x_t, t, t | neg_y)
--     + k u(x_t, t, t | y) inside [guidance_t_min, guidance_t_max]
--   cond_drop: the first Binomial(B, ratio) rows get v = n - x and y = neg_y
--   target = v - clip(t - r, 0, 1) (v . d_x u + d_t u), u = u(x_t, t, r | y)
--   L = sse / (sse + norm_eps)^norm_power
local mf = require "moonflow"
local H = require "helpers"
local I = mf.interfaces

local fp64 = mf.device().fp64
local DTYPES = fp64 and { "f32", "f64" } or { "f32" }
local RTOL = { f32 = 1e-6, f64 = 1e-12 }
local ATOL = { f32 = 1e-7, f64 = 1e-14 }

-- u(x, t, dt | y) = a x + b t^2 + c dt + d (y + 1) + e_j (the label term only
-- with num_classes; such a network needs cond.y, as label-conditioned nets do)
local P = { a = 0.7, b = -1.3, c = 0.45, d = 0.25, e = { 0.3, -0.6 } }

local function quad_net(dtype, num_classes)
  local net = { num_classes = num_classes, hidden_size = 4, training = true, calls = 0, modes = {}, labels = {} }
  function net:eval() self.training = false; return self end
  function net:train() self.training = true; return self end
  local e = mf.tensor({ P.e }, dtype)
  return setmetatable(net, { __call = function(self, x, t, cond)
    self.calls = self.calls + 1
    self.modes[#self.modes + 1] = self.training
    local B = x:shape()[1]
    local s = t * t * P.b
    if cond.dt ~= nil then s = s + cond.dt * P.c end
    if self.num_classes then
      if cond.y == nil then error("quad_net: needs cond.y") end
      self.labels[#self.labels + 1] = cond.y:tolist()
      s = s + (cond.y:to(x:dtype()) + 1) * P.d
    elseif cond.y ~= nil then
      error("quad_net: cond.y given to an unconditional network")
    end
    return x * P.a + s:reshape({ B, 1 }) + e, { x }
  end })
end

local function U(xt, t, dt, label)
  local o = {}
  for j = 1, #xt do
    o[j] = P.a * xt[j] + P.b * t * t + P.c * dt + (label and P.d * (label + 1) or 0) + P.e[j]
  end
  return o
end

-- per-sample reference losses in Lua doubles; m = rows dropped by cond_drop
-- (nil: no cond_drop draw); o = interface options; nc = num_classes or nil
local function reference(x, n, t, r, y, m, o, nc)
  local w, k = o.guidance_scale or 1, o.guidance_mixture_ratio or 0.5
  local tmin, tmax = o.guidance_t_min or 0, o.guidance_t_max or 1
  local eps, pw = o.norm_eps or 1e-3, o.norm_power or 1
  local losses, targets = {}, {}
  for i = 1, #x do
    local ti, ri = t[i], r[i]
    local xt, v = {}, {}
    for j = 1, #x[i] do
      xt[j] = (1 - ti) * x[i][j] + ti * n[i][j]
      v[j] = n[i][j] - x[i][j]
    end
    local yi = y and y[i] or nc
    local nyi = nc
    if not (w == 1 and k == 0) and ti >= tmin and ti <= tmax then
      local vu = U(xt, ti, 0, nyi)
      local vc = U(xt, ti, 0, yi)
      for j = 1, #v do v[j] = w * v[j] + (1 - w - k) * vu[j] + k * vc[j] end
    end
    if m and i <= m then
      yi = nyi
      for j = 1, #v do v[j] = n[i][j] - x[i][j] end
    end
    local u = U(xt, ti, ti - ri, yi)
    local h = math.min(math.max(ti - ri, 0), 1)
    local sse, tg = 0, {}
    for j = 1, #v do
      local dudt = P.a * v[j] + 2 * P.b * ti + P.c
      tg[j] = v[j] - h * dudt
      sse = sse + (u[j] - tg[j]) ^ 2
    end
    losses[i], targets[i] = sse / (sse + eps) ^ pw, tg
  end
  return losses, targets
end

-- the draws of loss(): t and r from two uniforms (max, min; the first
-- floor(B fm_portion) rows r = t), n ~ N(0, 1), label_dropout uniforms
local function draws(seed, B, D, dtype, fm, ratio)
  local g = mf.Rngs(seed)
  local a = g.time:uniform({ B }, { dtype = dtype }):tolist()
  local b = g.time:uniform({ B }, { dtype = dtype }):tolist()
  local n = g.noise:normal({ B, D }, { mean = 0, std = 1, dtype = dtype }):totable()
  local u = g.label_dropout:uniform({ B }):tolist()
  local t, r, m = {}, {}, 0
  for i = 1, B do
    t[i], r[i] = math.max(a[i], b[i]), math.min(a[i], b[i])
    if i <= math.floor(B * fm) then r[i] = t[i] end
    if u[i] < ratio then m = m + 1 end
  end
  return t, r, n, m
end

local function dropped(seed, B, ratio)
  local u = mf.Rngs(seed).label_dropout:uniform({ B }):tolist()
  local m = 0
  for i = 1, B do if u[i] < ratio then m = m + 1 end end
  return m
end

local B = 8
local X = H.rand_table({ B, 2 }, 31, -1.5, 1.5)

for _, DT in ipairs(DTYPES) do
  describe("MeanFlow against diffuse_nnx (" .. DT .. ")", function()
    local x = mf.tensor(X, DT)
    local xl = x:totable()

    it("loss samples (t, r) unshifted: L per sample with norm_power = 0 and the default t_shift_base", function()
      local o = { norm_power = 0 }
      local m = I.MeanFlow { network = quad_net(DT), norm_power = 0, rngs = mf.Rngs(5) }
      local res = m:loss(x, nil, { return_aux = true })
      local t, r, n, drop = draws(5, B, 2, DT, 0.75, 0.5)
      H.close(res.t:tolist(), t, 0, 0, "t as drawn")
      H.close(res.r:tolist(), r, 0, 0, "r as drawn")
      local ex = reference(xl, n, t, r, nil, drop, o, nil)
      H.close(res.loss:tolist(), ex, RTOL[DT], ATOL[DT], "per-sample loss")
    end)

    it("loss_t_shift = true (an extension, off by default) shifts t and r by sqrt(D / t_shift_base)", function()
      local o = { norm_power = 0 }
      local m = I.MeanFlow { network = quad_net(DT), norm_power = 0, loss_t_shift = true, t_shift_base = 8,
        rngs = mf.Rngs(6) }
      local res = m:loss(x, nil, { return_aux = true })
      local t, r, n, drop = draws(6, B, 2, DT, 0.75, 0.5)
      local s = math.sqrt(2 / 8)
      local function sh(v) return s * v / (1 + (s - 1) * v) end
      local ts, rs = H.map(sh, t), H.map(sh, r)
      H.close(res.t:tolist(), ts, RTOL[DT], 0, "shifted t")
      local ex = reference(xl, n, res.t:tolist(), res.r:tolist(), nil, drop, o, nil)
      H.close(res.loss:tolist(), ex, RTOL[DT], ATOL[DT], "per-sample loss")
      H.errors(function() I.MeanFlow { network = quad_net(DT), loss_t_shift = 1 } end,
        "MeanFlow", "loss_t_shift", "boolean")
    end)

    local cases = {
      { name = "w = 2, k = 0.3, window [0.2, 0.8]", nc = 3,
        o = { guidance_scale = 2, guidance_mixture_ratio = 0.3, guidance_t_min = 0.2, guidance_t_max = 0.8 } },
      { name = "w = 1.5, k = 0", nc = 3, o = { guidance_scale = 1.5, guidance_mixture_ratio = 0 } },
      { name = "w = 2, k = 0.3, unconditional network", nc = nil,
        o = { guidance_scale = 2, guidance_mixture_ratio = 0.3 } },
      { name = "the defaults w = 1, k = 0.5", nc = 3, o = {} },
    }
    for ci, c in ipairs(cases) do
      it("without labels, " .. c.name .. ": guidance with the null label in both branches, then cond_drop", function()
        local seed = 40 + ci
        local opts = { network = quad_net(DT, c.nc), rngs = mf.Rngs(seed), norm_power = 0.5, norm_eps = 0.01 }
        for k, v in pairs(c.o) do opts[k] = v end
        local o = { norm_power = 0.5, norm_eps = 0.01 }
        for k, v in pairs(c.o) do o[k] = v end
        local m = I.MeanFlow(opts)
        local res = m:loss(x, nil, { return_aux = true })
        local drop = dropped(seed, B, 0.5)
        assert.is_true(drop > 0 and drop < B, "some rows dropped, some kept: " .. drop)
        local ex, tg = reference(xl, res.n:totable(), res.t:tolist(), res.r:tolist(), nil, drop, o, c.nc)
        H.close(res.target:totable(), tg, RTOL[DT], ATOL[DT], "target")
        H.close(res.loss:tolist(), ex, RTOL[DT], ATOL[DT], "per-sample loss")
        if c.nc then
          for _, labels in ipairs(opts.network.labels) do
            assert.same(H.map(function() return c.nc end, labels), labels, "the null label in every call")
          end
        end
      end)
    end

    it("neg_y without y for a network without classes is an error naming it", function()
      local m = I.MeanFlow { network = quad_net(DT), guidance_scale = 2 }
      H.errors(function() m:insta_velocity(x, x, 0.5, { neg_y = mf.full({ B }, 0, { dtype = "i32" }) }) end,
        "MeanFlow", "neg_y", "num_classes")
    end)

    it("target with k = 0: the u pass runs in training mode (diffuse_nnx leaves the network in eval mode)", function()
      -- diffuse_nnx's insta_velocity calls network.eval() and returns before
      -- network.train() when k = 0 (and when w = 1, k = 0), so every later
      -- forward pass, the one that trains, runs without dropout: a reference
      -- bug. Here only the guidance pass runs in eval mode.
      local net = quad_net(DT, 3)
      local m = I.MeanFlow { network = net, guidance_scale = 1.5, guidance_mixture_ratio = 0,
        cond_drop_ratio = 0, rngs = mf.Rngs(9) }
      local n = mf.tensor(H.rand_table({ B, 2 }, 32), DT)
      local t = H.rand_table({ B }, 33, 0.1, 0.9)
      local r = H.map(function(a) return a * 0.5 end, t)
      local y = { 0, 1, 2, 0, 1, 2, 0, 1 }
      local tt, rt = mf.tensor(t, DT), mf.tensor(r, DT)
      local u, target = m:target(x, n, tt, rt, { y = mf.tensor(y, "i32") })
      assert.same({ false, true }, net.modes, "guidance in eval mode, the u pass in training mode")
      assert.is_true(net.training)
      local ex, tg = reference(xl, n:totable(), tt:tolist(), rt:tolist(), y, nil,
        { guidance_scale = 1.5, guidance_mixture_ratio = 0 }, 3)
      H.close(target:totable(), tg, RTOL[DT], ATOL[DT], "target")
      assert.equal(B, #ex)
      assert.same({ B, 2 }, u:shape())
    end)
  end)
end
