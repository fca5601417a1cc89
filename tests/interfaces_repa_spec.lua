-- REPA: the projector, the cosine alignment loss (-1 when aligned), the
-- combined loss, gradients reaching the network, token features.
local mf = require "moonflow"
local H = require "helpers"
local I = mf.interfaces

-- a network with fixed features h (the hidden state at depth 1), which it
-- scales by a leaf parameter `p` so gradients can be seen reaching it
local function feature_net(h, hidden)
  local p = mf.tensor({ 1.5 }):requires_grad()
  local net = { hidden_size = hidden, num_classes = 2, p = p }
  return setmetatable(net, { __call = function(self, x, t, cond)
    return x * 0.5, { h * self.p }
  end })
end

local function rep(v, n)
  local t = {}
  for i = 1, n do t[i] = v end
  return t
end

describe("REPA", function()
  it("build_mlp: Linear -> SiLU -> Linear -> SiLU -> Linear, per token", function()
    local m = I.build_mlp(8, 16, 5, mf.Rngs(1))
    assert.equal(5, #m._children)
    assert.same({ 16, 8 }, m:at(1).weight:shape())
    assert.same({ 16, 16 }, m:at(3).weight:shape())
    assert.same({ 5, 16 }, m:at(5).weight:shape())
    assert.same({ 4, 7, 5 }, m(mf.randn({ 4, 7, 8 })):shape())
    -- the formula, row by row
    local x = mf.randn({ 3, 8 })
    local L = function(i, v) return v:matmul(m:at(i).weight:t()) + m:at(i).bias end
    local e = L(5, L(3, L(1, x):silu()):silu())
    H.close(m(x):totable(), e:totable(), 1e-5, 1e-6)
  end)

  it("the loss is -1 for perfectly aligned features, and total = diffusion + w repa", function()
    local B, hidden = 6, 8
    local h = mf.randn({ B, hidden })
    local net = feature_net(h, hidden)
    local r = I.REPA { interface = I.SiT { network = net, rngs = mf.Rngs(2) }, feature_dim = 5,
      repa_loss_weight = 0.25, repa_depth = 1, proj_dim = 12, rngs = mf.Rngs(3) }
    -- aligned: any positive multiple of the projected features
    local target = mf.no_grad(function() return r.projector(h * 1.5) * 3 end)
    local out = r(mf.randn({ B, 2 }), target)
    H.close(out.repa_loss:tolist(), rep(-1, B), 1e-5, 1e-6, "aligned")
    H.close(out.loss:tolist(), H.map(function(d, p) return d + 0.25 * p end, out.diffusion_loss:tolist(),
      out.repa_loss:tolist()), 1e-6, 1e-6, "total")
    -- anti-aligned: +1
    local anti = r(mf.randn({ B, 2 }), target * -1)
    H.close(anti.repa_loss:tolist(), rep(1, B), 1e-5, 1e-6, "anti-aligned")
  end)

  it("repa_loss = mean over tokens of -cos for {B, T, hidden} features", function()
    local B, T, hidden, F = 3, 4, 6, 5
    local h = mf.randn({ B, T, hidden })
    local r = I.REPA { interface = I.SiT { network = feature_net(h, hidden), rngs = mf.Rngs(2) },
      feature_dim = F, repa_loss_weight = 1, repa_depth = 1, proj_dim = 7, rngs = mf.Rngs(4) }
    local xf = mf.randn({ B, T, F })
    local out = r(mf.randn({ B, 2 }), xf)
    local p = mf.no_grad(function() return r.projector(h * 1.5) end):totable()
    local a = xf:totable()
    local e = {}
    for i = 1, B do
      local s = 0
      for k = 1, T do
        local dot, na, nb = 0, 0, 0
        for j = 1, F do
          dot = dot + a[i][k][j] * p[i][k][j]
          na, nb = na + a[i][k][j] ^ 2, nb + p[i][k][j] ^ 2
        end
        s = s - dot / math.sqrt(na * nb)
      end
      e[i] = s / T
    end
    H.close(out.repa_loss:tolist(), e, 1e-5, 1e-6)
  end)

  it("its gradient reaches the network and the projector", function()
    local B, hidden = 5, 8
    local h = mf.randn({ B, hidden })
    local net = feature_net(h, hidden)
    local r = I.REPA { interface = I.SiT { network = net, rngs = mf.Rngs(2) }, feature_dim = 3,
      repa_loss_weight = 1, repa_depth = 1, proj_dim = 6, rngs = mf.Rngs(5) }
    local xf = mf.randn({ B, 3 })
    r(mf.randn({ B, 2 }), xf).repa_loss:sum():backward()
    assert.is_true(math.abs(net.p.grad:item()) > 0, "network")
    for name, p in r:named_parameters() do assert.is_true(p.grad:norm():item() > 0, name) end
    -- d repa / d p by central differences in the features' scale
    local function f(pv)
      net.p = mf.tensor({ pv })
      return r(mf.randn({ B, 2 }), xf).repa_loss:sum():item()
    end
    local g = net.p.grad:item()
    local eps = 1e-2
    local num = (f(1.5 + eps) - f(1.5 - eps)) / (2 * eps)
    H.close(g, num, 2e-2, 1e-4, "d repa / d network parameter")
  end)

  it("works with VelocityMLP (features {B, hidden}); pred and score pass through", function()
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 3, rngs = mf.Rngs(6) }
    local sit = I.SiT { network = net, rngs = mf.Rngs(7) }
    local r = I.REPA { interface = sit, feature_dim = 4, repa_loss_weight = 0.5, repa_depth = 2, proj_dim = 8 }
    local out = r:loss(mf.randn({ 8, 2 }), mf.randn({ 8, 4 }))
    assert.same({ 8 }, out.loss:shape())
    out.loss:mean():backward()
    assert.is_true(net.blocks["1"].linear.weight.grad:norm():item() > 0)
    local x = mf.randn({ 4, 2 })
    H.close(r:pred(x, 0.5):totable(), sit:pred(x, 0.5):totable(), 0, 0)
    H.close(r:score(x, 0.5):totable(), sit:score(x, 0.5):totable(), 0, 0)
  end)

  it("errors name the values", function()
    local net = feature_net(mf.randn({ 2, 4 }), 4)
    local sit = I.SiT { network = net }
    H.errors(function() I.REPA { interface = sit, feature_dim = 0, repa_loss_weight = 1, repa_depth = 1, proj_dim = 4 } end,
      "REPA", "feature_dim", "0")
    local r = I.REPA { interface = sit, feature_dim = 3, repa_loss_weight = 1, repa_depth = 2, proj_dim = 4 }
    H.errors(function() r(mf.randn({ 2, 2 }), mf.randn({ 2, 3 })) end, "REPA.loss", "depth 2")
    local r1 = I.REPA { interface = sit, feature_dim = 3, repa_loss_weight = 1, repa_depth = 1, proj_dim = 4 }
    H.errors(function() r1(mf.randn({ 2, 2 }), mf.randn({ 2, 5 })) end, "REPA.loss", "{2, 5}", "{2, 3}")
  end)
end)
