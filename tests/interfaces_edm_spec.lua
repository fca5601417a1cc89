-- EDM: preconditioning against Lua doubles, the denoiser, tangent, score of
-- Gaussian data (the exact one, not diffuse_nnx's), the weighted loss.
local mf = require "moonflow"
local H = require "helpers"
local G = require "interfaces_gauss"
local I = mf.interfaces

local fp64 = mf.device().fp64
local DT = fp64 and "f64" or "f32"
local TOL = fp64 and 1e-10 or 1e-4

local g = G.new({ 0.5, -1 }, 0.7)
local sd = 0.5

describe("EDM", function()
  local e = I.EDM { network = g:edm_network(sd, DT), x_sigma = sd }
  local sig = { 0.02, 0.3, 1, 7.5 }

  it("c_in, c_out, c_skip, c_noise and the loss weight", function()
    local t = mf.tensor(sig, DT)
    H.close(e:c_in(t):tolist(), H.map(function(s) return 1 / math.sqrt(sd ^ 2 + s ^ 2) end, sig), TOL, TOL, "c_in")
    H.close(e:c_out(t):tolist(), H.map(function(s) return s * sd / math.sqrt(s ^ 2 + sd ^ 2) end, sig), TOL, TOL, "c_out")
    H.close(e:c_skip(t):tolist(), H.map(function(s) return sd ^ 2 / (s ^ 2 + sd ^ 2) end, sig), TOL, TOL, "c_skip")
    H.close(e:c_noise(t):tolist(), H.map(function(s) return math.log(s) / 4 end, sig), TOL, TOL, "c_noise")
    H.close(e:loss_weight(t):tolist(), H.map(function(s) return (s ^ 2 + sd ^ 2) / (s * sd) ^ 2 end, sig), TOL, TOL, "weight")
    assert.equal(1 / math.sqrt(sd ^ 2 + 0.09), e:c_in(0.3))
  end)

  it("sample_x_t = x + sigma n, target = x", function()
    local x, n = H.rand_table({ 4, 3 }, 1), H.rand_table({ 4, 3 }, 2)
    local xt = e:sample_x_t(mf.tensor(x, DT), mf.tensor(n, DT), mf.tensor(sig, DT))
    local ex = {}
    for i = 1, 4 do
      ex[i] = {}
      for j = 1, 3 do ex[i][j] = x[i][j] + sig[i] * n[i][j] end
    end
    H.close(xt:totable(), ex, TOL, TOL)
    H.close(e:target(mf.tensor(x, DT), mf.tensor(n, DT), sig):totable(), x, TOL, TOL)
  end)

  it("D = c_skip x_t + c_out F is the posterior mean, pred = (x_t - D)/sigma", function()
    local xt = H.rand_table({ 4, 2 }, 3, -3, 3)
    local D = e:denoise(mf.tensor(xt, DT), mf.tensor(sig, DT))
    local ED = g:edm_denoised(xt, sig)
    H.close(D:totable(), ED, TOL, TOL, "denoiser")
    local v = e:pred(mf.tensor(xt, DT), mf.tensor(sig, DT))
    local ev = {}
    for i = 1, 4 do
      ev[i] = {}
      for j = 1, 2 do ev[i][j] = (xt[i][j] - ED[i][j]) / sig[i] end
    end
    H.close(v:totable(), ev, TOL, TOL, "tangent")
  end)

  it("score = (D - x_t)/sigma^2 is the score of the noised Gaussian (diffuse_nnx's is not)", function()
    local xt = H.rand_table({ 4, 2 }, 4, -3, 3)
    local sc = e:score(mf.tensor(xt, DT), mf.tensor(sig, DT))
    local exact = g:edm_score(xt, sig)
    H.close(sc:totable(), exact, TOL, TOL, "score")
    -- diffuse_nnx: -(x_t - v) / sigma^2 with v = (x_t - D)/sigma
    local ED = g:edm_denoised(xt, sig)
    local v = (xt[2][1] - ED[2][1]) / sig[2]
    local wrong = -(xt[2][1] - v) / sig[2] ^ 2
    assert.is_true(math.abs(wrong - exact[2][1]) > 0.1, "the seed's formula differs")
    H.close(e:score(mf.tensor(xt, DT), 0.3):totable(), g:edm_score(xt, 0.3), TOL, TOL, "sigma as a number")
  end)

  it("loss = lambda(sigma) mean_flat((D - x)^2), sigma ~ lognormal(t_mu, t_sigma)", function()
    local x = mf.tensor(H.rand_table({ 32, 2 }, 5), DT)
    local e2 = I.EDM { network = g:edm_network(sd, DT), x_sigma = sd, t_mu = -1.2, t_sigma = 1.2, rngs = mf.Rngs(5) }
    local res = e2:loss(x, nil, { return_aux = true })
    local z = mf.Rngs(5).time:normal({ 32 }, { mean = -1.2, std = 1.2, dtype = DT }):tolist()
    H.close(res.t:tolist(), H.map(math.exp, z), TOL, TOL, "sigma")
    local D, xs, s = res.out:totable(), x:totable(), res.t:tolist()
    local ex = {}
    for i = 1, 32 do
      local acc = 0
      for j = 1, 2 do acc = acc + (D[i][j] - xs[i][j]) ^ 2 end
      ex[i] = acc / 2 * (s[i] ^ 2 + sd ^ 2) / (s[i] * sd) ^ 2
    end
    H.close(res.loss:tolist(), ex, TOL, TOL, "weighted loss")
  end)

  it("the loss gradient reaches a VelocityMLP's parameters", function()
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 2, rngs = mf.Rngs(1) }
    local l = I.EDM { network = net, rngs = mf.Rngs(3) }:loss(mf.randn({ 16, 2 })).loss:mean()
    l:backward()
    assert.is_true(net.out_proj.weight.grad:norm():item() > 0)
    assert.is_true(net.in_proj.weight.grad:norm():item() > 0)
  end)
end)
