-- MeanFlow: (t, r) sampling, condition dropout row counts, guidance mixing,
-- the JVP target against float64 finite differences, the adaptive loss, the score.
local mf = require "moonflow"
local H = require "helpers"
local G = require "interfaces_gauss"
local I = mf.interfaces

local fp64 = mf.device().fp64
local DT = fp64 and "f64" or "f32"
local TOL = fp64 and 1e-10 or 1e-4

-- a network whose output is (y + 1) in every entry; it records its calls
local function label_net(dim)
  local net = { calls = 0, num_classes = 3, hidden_size = 4, training = true, modes = {}, dts = {} }
  function net:eval() self.training = false; return self end
  function net:train() self.training = true; return self end
  return setmetatable(net, { __call = function(self, x, t, cond)
    self.calls = self.calls + 1
    self.modes[#self.modes + 1] = self.training
    self.dts[#self.dts + 1] = cond.dt
    local B = x:shape()[1]
    local y = cond.y:to(mf.core.dtype(x)):reshape({ B, 1 })
    return x * 0 + (y + 1), { x }
  end })
end

describe("MeanFlow", function()
  it("sample_t_r: t >= r, the first floor(B fm_portion) rows have r = t", function()
    local B = 4000
    local m = I.MeanFlow { network = label_net(2), fm_portion = 0.75, rngs = mf.Rngs(1) }
    local t, r = m:sample_t_r({ B })
    t, r = t:tolist(), r:tolist()
    local k = math.floor(B * 0.75)
    local st, sr = 0, 0
    for i = 1, B do
      assert.is_true(t[i] >= r[i])
      if i <= k then assert.equal(t[i], r[i]) else st, sr = st + t[i], sr + r[i] end
    end
    -- rows past k: max and min of two uniforms, means 2/3 and 1/3, variance 1/18
    local tol = 5 * math.sqrt(1 / 18 / (B - k))
    assert.is_true(math.abs(st / (B - k) - 2 / 3) < tol, "mean of t")
    assert.is_true(math.abs(sr / (B - k) - 1 / 3) < tol, "mean of r")
  end)

  it("cond_drop: a Binomial(B, ratio) prefix of rows gets neg_y and v = n - x", function()
    local B, p = 4000, 0.3
    local m = I.MeanFlow { network = label_net(2), cond_drop_ratio = p, rngs = mf.Rngs(2) }
    local x, n = mf.randn({ B, 2 }), mf.randn({ B, 2 })
    local v0 = mf.full({ B, 2 }, 5)
    local y = mf.randint({ B }, 0, 3)
    local v, y2 = m:cond_drop(x, n, v0, y, mf.full({ B }, 3, "i32"))
    local yl, vl, nx = y2:tolist(), v:totable(), (n - x):totable()
    local cnt = 0
    while cnt < B and yl[cnt + 1] == 3 do cnt = cnt + 1 end
    for i = cnt + 1, B do assert.is_true(yl[i] ~= 3, "dropped rows form a prefix") end
    assert.is_true(math.abs(cnt - B * p) < 5 * math.sqrt(B * p * (1 - p)), "count " .. cnt)
    H.close({ vl[1], vl[cnt] }, { nx[1], nx[cnt] }, 0, 0, "dropped rows take n - x")
    H.close({ vl[cnt + 1], vl[B] }, { { 5, 5 }, { 5, 5 } }, 0, 0, "kept rows keep v")
  end)

  it("insta_velocity: no network call when w = 1 and k = 0", function()
    local net = label_net(2)
    local m = I.MeanFlow { network = net, guidance_scale = 1, guidance_mixture_ratio = 0 }
    local x, n = mf.randn({ 8, 2 }), mf.randn({ 8, 2 })
    local v, y, neg_y = m:insta_velocity(x, n, 0.5, { y = mf.randint({ 8 }, 0, 3) })
    assert.equal(0, net.calls)
    H.close(v:totable(), (n - x):totable(), 1e-6, 1e-6)
    assert.same({ 3, 3, 3, 3, 3, 3, 3, 3 }, neg_y:tolist(), "null label = num_classes")
  end)

  it("insta_velocity mixes w v + (1 - w - k) v_uncond + k v_cond inside [t_min, t_max] only", function()
    local net = label_net(2)
    local w, k = 2.0, 0.3
    local m = I.MeanFlow { network = net, guidance_scale = w, guidance_mixture_ratio = k,
      guidance_t_min = 0.3, guidance_t_max = 0.7 }
    local B = 6
    local x, n = mf.tensor(H.rand_table({ B, 2 }, 1)), mf.tensor(H.rand_table({ B, 2 }, 2))
    local t = { 0.1, 0.3, 0.5, 0.7, 0.9, 0.6 }
    local labels = { 0, 1, 2, 0, 1, 2 }
    local v = m:insta_velocity(x, n, mf.tensor(t), { y = mf.tensor(labels, "i32") })
    assert.equal(1, net.calls, "conditional and unconditional in one batched call")
    assert.same({ false }, net.modes, "the network runs in eval mode")
    assert.is_true(net.training, "and is put back in training mode")
    assert.same({ 0 }, { net.dts[1]:max():item() }, "at r = t (dt = 0)")
    local vt, ex = (n - x):totable(), {}
    for i = 1, B do
      ex[i] = {}
      for j = 1, 2 do
        local inside = t[i] >= 0.3 and t[i] <= 0.7
        ex[i][j] = inside and (w * vt[i][j] + (1 - w - k) * 4 + k * (labels[i] + 1)) or vt[i][j]
      end
    end
    H.close(v:totable(), ex, 1e-6, 1e-6)
    -- k = 0: only the unconditional branch
    local net2 = label_net(2)
    local m2 = I.MeanFlow { network = net2, guidance_scale = 1.5, guidance_mixture_ratio = 0 }
    local v2 = m2:insta_velocity(x, n, 0.5, { y = mf.tensor(labels, "i32") })
    assert.equal(1, net2.calls)
    H.close(v2:totable(), H.map(function(a) return 1.5 * a - 0.5 * 4 end, vt), 1e-6, 1e-6)
  end)

  describe("target", function()
    if not fp64 then
      it("needs fp64 for finite differences", function() pending("device without fp64") end)
      return
    end
    it("u and sg(v - clip(t - r, 0, 1) du/dt) match float64 finite differences", function()
      local net = mf.nn.VelocityMLP { dim = 3, hidden = 16, depth = 2, num_classes = 3, use_dt = true,
        dtype = "f64", t_scale = 1, rngs = mf.Rngs(4) } -- t_scale 1: smooth in t, so finite differences resolve du/dt
      local m = I.MeanFlow { network = net, guidance_scale = 1, guidance_mixture_ratio = 0, cond_drop_ratio = 0 }
      local B = 4
      local x = mf.tensor(H.rand_table({ B, 3 }, 5), "f64")
      local n = mf.tensor(H.rand_table({ B, 3 }, 6), "f64")
      local t = { 0.9, 0.6, 0.4, 0.2 }
      local r = { 0.1, 0.6, 0.3, 0.0 }
      local y = mf.tensor({ 0, 1, 2, 1 }, "i32")
      local u, target = m:target(x, n, mf.tensor(t, "f64"), mf.tensor(r, "f64"), { y = y })
      assert.is_true(u:needs_grad(), "u carries gradient")
      assert.is_nil(target._node, "the target is a constant")
      local v = n - x
      local xt = x * (1 - mf.tensor(t, "f64"):reshape({ B, 1 })) + n * mf.tensor(t, "f64"):reshape({ B, 1 })
      local function u_at(h)
        local th = mf.tensor(H.map(function(a) return a + h end, t), "f64")
        return net(xt + v * h, th, { y = y, dt = th - mf.tensor(r, "f64") })
      end
      local h = 1e-5
      local dudt = ((u_at(h) - u_at(-h)) / (2 * h)):totable()
      local vt, ex = v:totable(), {}
      for i = 1, B do
        ex[i] = {}
        local c = math.min(math.max(t[i] - r[i], 0), 1)
        for j = 1, 3 do ex[i][j] = vt[i][j] - c * dudt[i][j] end
      end
      H.close(target:totable(), ex, 1e-7, 1e-8, "target")
      H.close(u:totable(), u_at(0):totable(), 1e-12, 1e-12, "u")
    end)
  end)

  it("loss = sum((u - target)^2) sg(1/(sum + norm_eps)^norm_power) per sample", function()
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 2, num_classes = 3, use_dt = true,
      dtype = DT, rngs = mf.Rngs(7) }
    local m = I.MeanFlow { network = net, norm_eps = 0.01, norm_power = 0.5, rngs = mf.Rngs(8),
      guidance_scale = 1.5, guidance_mixture_ratio = 0.2 }
    local x = mf.randn({ 16, 2 }, { dtype = DT })
    local res = m:loss(x, { y = mf.randint({ 16 }, 0, 3) }, { return_aux = true })
    local u, tg = res.out:totable(), res.target:totable()
    local ex = {}
    for i = 1, 16 do
      local s = 0
      for j = 1, 2 do s = s + (u[i][j] - tg[i][j]) ^ 2 end
      ex[i] = s / (s + 0.01) ^ 0.5
    end
    H.close(res.loss:tolist(), ex, TOL * 100, TOL, "adaptive loss")
    res.loss:mean():backward()
    assert.is_true(net.in_proj.weight.grad:norm():item() > 0, "gradient reaches the network")
    assert.is_true(net.dt_embed ~= nil)
  end)

  it("pred passes dt = t - r; score evaluates u at r = t and divides by t", function()
    local g = G.new({ 0.5, -1 }, 0.7)
    local net = g:sit_network(DT)
    local seen
    local spy = setmetatable({ num_classes = 3, hidden_size = 4 }, { __call = function(_, x, t, c)
      seen = c.dt
      return net(x, t, c)
    end })
    local m = I.MeanFlow { network = spy }
    local xt = H.rand_table({ 3, 2 }, 9, -2, 2)
    m:pred(mf.tensor(xt, DT), mf.tensor({ 0.9, 0.5, 0.3 }, DT), mf.tensor({ 0.2, 0.5, 0 }, DT))
    H.close(seen:tolist(), { 0.7, 0, 0.3 }, 1e-6, 1e-7, "dt")
    local t = { 0.2, 0.5, 0.8 }
    local sc = m:score(mf.tensor(xt, DT), mf.tensor(t, DT))
    assert.same({ 0, 0, 0 }, seen:tolist(), "u at r = t")
    H.close(sc:totable(), g:sit_score(xt, t), TOL, TOL, "score")
    H.errors(function() m:pred(mf.tensor(xt, DT), 0.5) end, "MeanFlow.pred", "r")
  end)

  it("option checks", function()
    H.errors(function() I.MeanFlow { network = label_net(2), fm_portion = 1.5 } end, "MeanFlow", "fm_portion", "1.5")
    H.errors(function() I.MeanFlow { network = label_net(2), guidance_t_min = 0.8, guidance_t_max = 0.2 } end,
      "MeanFlow", "guidance_t_min", "0.8")
  end)
end)
