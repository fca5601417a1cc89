-- SiT: formulas against Lua doubles, pred = target for the exact network,
-- the score against the analytic score of Gaussian data, the loss.
local mf = require "moonflow"
local H = require "helpers"
local G = require "interfaces_gauss"
local I = mf.interfaces

local fp64 = mf.device().fp64
local DT = fp64 and "f64" or "f32"
local TOL = fp64 and 1e-10 or 1e-4

local g = G.new({ 0.5, -1 }, 0.7)

describe("SiT", function()
  it("c_in = c_out = 1, c_skip = 0, c_noise = t", function()
    local s = I.SiT { network = g:sit_network(DT) }
    local t = mf.tensor({ 0.2, 0.7 })
    assert.same({ 1, 1 }, s:c_in(t):tolist())
    assert.same({ 1, 1 }, s:c_out(t):tolist())
    assert.same({ 0, 0 }, s:c_skip(t):tolist())
    H.close(s:c_noise(t):tolist(), { 0.2, 0.7 }, 1e-7, 0)
    assert.equal(1, s:c_in(0.3))
  end)

  it("sample_x_t = (1 - t) x + t n and target = n - x", function()
    local s = I.SiT { network = g:sit_network(DT) }
    local x, n, t = H.rand_table({ 3, 4 }, 1), H.rand_table({ 3, 4 }, 2), { 0.1, 0.5, 0.9 }
    local xt = s:sample_x_t(mf.tensor(x, DT), mf.tensor(n, DT), mf.tensor(t, DT))
    local e, v = {}, {}
    for i = 1, 3 do
      e[i], v[i] = {}, {}
      for j = 1, 4 do
        e[i][j] = (1 - t[i]) * x[i][j] + t[i] * n[i][j]
        v[i][j] = n[i][j] - x[i][j]
      end
    end
    H.close(xt:totable(), e, TOL, TOL)
    H.close(s:target(mf.tensor(x, DT), mf.tensor(n, DT), t):totable(), v, TOL, TOL)
  end)

  it("a network that returns the true velocity n - x makes pred equal the target", function()
    local x, n = mf.tensor(H.rand_table({ 5, 2 }, 3), DT), mf.tensor(H.rand_table({ 5, 2 }, 4), DT)
    -- knows x: from x_t = x + t (n - x) it returns (x_t - x) / t = n - x
    local oracle = setmetatable({}, { __call = function(_, xt, t) return (xt - x) / t:reshape({ 5, 1 }) end })
    local s = I.SiT { network = oracle }
    local t = mf.tensor({ 0.1, 0.3, 0.5, 0.7, 0.9 }, DT)
    H.close(s:pred(s:sample_x_t(x, n, t), t):totable(), s:target(x, n, t):totable(), TOL, TOL)
  end)

  it("score = -(x_t + (1 - t) v) / t equals the analytic score of Gaussian data", function()
    local s = I.SiT { network = g:sit_network(DT) }
    local xt = H.rand_table({ 6, 2 }, 5, -3, 3)
    local t = { 0.05, 0.2, 0.4, 0.6, 0.8, 0.95 }
    local sc = s:score(mf.tensor(xt, DT), mf.tensor(t, DT))
    H.close(sc:totable(), g:sit_score(xt, t), TOL, TOL, "score")
    H.close(s:pred(mf.tensor(xt, DT), mf.tensor(t, DT)):totable(), g:sit_velocity(xt, t), TOL, TOL, "velocity")
    -- the diffuse_nnx docstring form -x_t - (1 - t) v (no /t) is not the score
    local v = g:sit_velocity(xt, t)
    local wrong = -xt[1][1] - (1 - t[1]) * v[1][1]
    assert.is_true(math.abs(wrong - g:sit_score(xt, t)[1][1]) > 0.1)
    -- t as a number
    H.close(s:score(mf.tensor(xt, DT), 0.4):totable(), g:sit_score(xt, 0.4), TOL, TOL)
  end)

  it("loss = mean_flat((net(x_t, t) - (n - x))^2) with t shifted by sqrt(dim / t_shift_base)", function()
    local x = mf.tensor(H.rand_table({ 64, 2 }, 6), DT)
    local s = I.SiT { network = g:sit_network(DT), rngs = mf.Rngs(11), t_shift_base = 8 }
    local res = s:loss(x, nil, { return_aux = true })
    assert.same({ 64 }, res.loss:shape())
    -- the same draws again: raw t from rngs.time, then the shift sqrt(2 / 8) = 1/2
    local raw = mf.Rngs(11).time:uniform({ 64 }, { dtype = DT }):tolist()
    H.close(res.t:tolist(), H.map(function(t) return 0.5 * t / (1 - 0.5 * t) end, raw), TOL, TOL, "shifted t")
    local n = mf.Rngs(11).noise:normal({ 64, 2 }, { dtype = DT }):totable()
    H.close(res.n:totable(), n, 0, 0, "noise from rngs.noise")
    local xs, ts, out = x:totable(), res.t:tolist(), res.out:totable()
    local e = {}
    for i = 1, 64 do
      local acc = 0
      for j = 1, 2 do acc = acc + (out[i][j] - (n[i][j] - xs[i][j])) ^ 2 end
      e[i] = acc / 2
    end
    H.close(res.loss:tolist(), e, TOL, TOL, "loss")
    assert.is_table(res.features)
  end)

  it("trains a VelocityMLP: the loss gradient reaches every parameter", function()
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 2, rngs = mf.Rngs(1) }
    local s = I.SiT { network = net, rngs = mf.Rngs(2) }
    local l = s:loss(mf.randn({ 32, 2 })).loss:mean()
    l:backward()
    for name, p in net:named_parameters() do
      assert.is_true(p.grad:norm():item() > 0, name)
    end
  end)
end)
