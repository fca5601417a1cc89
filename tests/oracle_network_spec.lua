-- The oracle's networks: through the real interfaces their pred and score
-- are the exact fields, and backward and jvp work through them.
local mf = require "moonflow"
local H = require "helpers"

local I = mf.interfaces
local fp64 = mf.device().fp64
local DT = fp64 and "f64" or "f32"
local TOL = fp64 and 1e-9 or 3e-4

local gm = mf.oracle.GaussianMixture { means = { { -2, 0 }, { 2, 1 }, { 0, -1.5 } }, stds = { 0.5, 0.3, 0.4 },
  weights = { 0.3, 0.5, 0.2 } }
local g1 = mf.oracle.GaussianMixture { means = { { 1.5, -0.5 } }, stds = { 0.35 } }

local pts = { { 0.3, -0.2 }, { -2.5, 0.4 }, { 2.2, 1.1 }, { 4, -3 }, { 0.9, -1.3 } }
local B = #pts
local function X() return mf.tensor(pts, { dtype = DT }) end
local function T(v) return mf.tensor(v, { dtype = DT }) end

describe("oracle networks", function()
  it("follow the protocol net(x, t, cond) -> out, features with num_classes and hidden_size", function()
    local net = gm:network("sit")
    local out, features = net(X(), T { 0.1, 0.2, 0.3, 0.4, 0.5 })
    assert.same({ B, 2 }, out:shape())
    assert.same({}, features)
    assert.equal(3, net.num_classes)
    assert.equal(2, net.hidden_size)
    assert.equal(1, net.calls)
    -- a number t is broadcast
    H.close(net(X(), 0.4):totable(), gm:velocity(X(), 0.4):totable(), TOL, TOL)
    H.errors(function() gm:network("ddpm") end, "moonflow.oracle.network", "ddpm")
    H.errors(function() gm:network("edm", { x_sigma = -1 }) end, "x_sigma")
    H.errors(function() gm:network("meanflow")(X(), 0.5, { dt = 0.2 }) end, "needs labels cond.y")
  end)

  it("SiT: pred is the exact velocity, score the exact score", function()
    local sit = I.SiT { network = gm:network("sit") }
    local t = T { 0.02, 0.3, 0.5, 0.8, 1 }
    H.close(sit:pred(X(), t):totable(), gm:velocity(X(), t):totable(), TOL, TOL)
    H.close(sit:score(X(), t):totable(), gm:score(X(), t):totable(), 10 * TOL, 10 * TOL)
  end)

  it("EDM: c_skip x + c_out F is the exact denoiser; pred and score are exact", function()
    for _, xs in ipairs { 0.5, 1.3 } do
      local edm = I.EDM { network = gm:network("edm", { x_sigma = xs }), x_sigma = xs }
      local s = T { 0.002, 0.1, 0.7, 3, 80 }
      local x = X() * 2
      H.close(edm:denoise(x, s):totable(), gm:edm_denoiser(x, s):totable(), TOL, TOL, "D")
      local v = (x - gm:edm_denoiser(x, s)) / s:reshape { B, 1 }
      H.close(edm:pred(x, s):totable(), v:totable(), 1e3 * TOL, 1e3 * TOL, "pred")
      H.close(edm:score(x, s):totable(), gm:edm_score(x, s):totable(), 1e3 * TOL, 1e3 * TOL, "score")
    end
  end)

  it("MeanFlow: pred is the exact average velocity u(x_t, t, r); score uses u(t, t)", function()
    local m = I.MeanFlow { network = g1:network("meanflow") }
    local t, r = T { 1, 0.9, 0.6, 0.4, 0.2 }, T { 0, 0.3, 0.6, 0.1, 0 }
    H.close(m:pred(X(), t, r):totable(), g1:average_velocity(X(), t, r):totable(), TOL, TOL)
    H.close(m:score(X(), t):totable(), g1:score(X(), t):totable(), 10 * TOL, 10 * TOL)
    -- with labels on a mixture: each sample's own component; the null label is undefined (NaN)
    local y = mf.tensor({ 0, 1, 2, 1, 3 }, { dtype = "i32" })
    local u = gm:network("meanflow")(X(), t, { y = y, dt = t - r }):totable()
    for i = 1, 4 do
      local k = y:totable()[i] + 1
      local gk = mf.oracle.GaussianMixture { means = { gm.means[k] }, stds = { gm.stds[k] } }
      local want = gk:average_velocity(X():narrow(1, i, 1), t:narrow(1, i, 1), r:narrow(1, i, 1)):totable()[1]
      H.close(u[i], want, TOL, TOL, "label " .. (k - 1))
    end
    assert(u[5][1] ~= u[5][1], "the null label has no closed-form average velocity")
  end)

  if fp64 then
    -- central differences in float64
    local function fd(f, x0, dir, h)
      return (f(x0 + dir * h) - f(x0 - dir * h)) / (2 * h)
    end

    it("backward through every network matches finite differences", function()
      local t = T { 0.15, 0.35, 0.55, 0.75, 0.95 }
      local y = mf.tensor({ 0, 1, 3, 2, 3 }, { dtype = "i32" })
      local w = T(H.rand_table({ B, 2 }, 5))
      for _, case in ipairs {
        { "sit", gm:network("sit"), t, { y = y } },
        { "edm", gm:network("edm"), T { -1.2, -0.5, 0, 0.4, 1 }, { y = y } }, -- c_noise values
        { "meanflow", g1:network("meanflow"), t, { dt = t * 0.5 } },
      } do
        local name, net, tt, cond = case[1], case[2], case[3], case[4]
        local x = X():requires_grad()
        local tg = (tt * 1):requires_grad()
        local out = net(x, tg, cond)
        ;(out * w):sum():backward()
        local f = function(xx) return (net(xx, tt, cond) * w):sum(2) end
        for d = 1, 2 do
          local e = {}
          for i = 1, B do e[i] = { d == 1 and 1 or 0, d == 2 and 1 or 0 } end
          local num = fd(f, X(), T(e), 1e-6):totable()
          local got = x.grad:narrow(2, d, 1):reshape { B }:totable()
          H.close(got, num, 1e-6, 1e-7, name .. " d/dx" .. d)
        end
        local ft = function(tv) return (net(X(), tv, cond) * w):sum(2) end
        H.close(tg.grad:totable(), fd(ft, tt, mf.ones({ B }, { dtype = "f64" }), 1e-6):totable(), 1e-6, 1e-7, name .. " d/dt")
      end
    end)

    it("jvp through the meanflow network satisfies the MeanFlow identity u = v - (t - r) du/dt", function()
      local net = g1:network("meanflow")
      local t, r = T { 0.9, 0.7, 0.5, 0.35, 0.2 }, T { 0.1, 0.3, 0.05, 0.3, 0 }
      local x = X()
      local v = g1:velocity(x, t)
      -- d/dt u(x_t, t, r) along the flow: tangents (v, 1) for (x_t, t) and 1 for dt = t - r
      local u, dudt = mf.autograd.jvp(function(xx, tt, dt) return (net(xx, tt, { dt = dt })) end,
        { x, t, t - r }, { v, mf.ones({ B }, { dtype = "f64" }), mf.ones({ B }, { dtype = "f64" }) })
      local rhs = v - dudt * (t - r):reshape { B, 1 }
      H.close(u:totable(), rhs:totable(), 1e-9, 1e-10)
    end)
  end
end)
