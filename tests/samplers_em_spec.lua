-- Stochastic samplers against the exact Gaussian-mixture oracle:
-- Euler-Maruyama with every diffusion coefficient.
local mf = require "moonflow"
local H = require "helpers"
local SH = require "samplers_helpers"

local S = mf.samplers
local gm = SH.gm

describe("samplers: Euler-Maruyama", function()
  local n = 32768
  local z = mf.Generator(31):normal { n, 2 }
  local sit = SH.sit()

  it("one step is x + h (v - w/2 score) + sqrt(w |h|) z, z the generator's own normal draw", function()
    local B = 1000
    local x = mf.Generator(2):normal { B, 2 }
    local s = S.EulerMaruyama { diffusion_coeff = "constant", diffusion_coeff_norm = 0.8 }
    local g = mf.Generator(77)
    g:normal { 3 } -- a used generator: the step continues its stream
    local g2 = mf.Generator(77)
    g2:set_state(g:get_state())
    local t, tn = 0.55, 0.5
    local out = s:forward(g, sit, x, t, tn)
    local zz = g2:normal { B, 2 }
    assert.same(g2:get_state(), g:get_state())
    local d = gm:velocity(x, t) - gm:score(x, t) * 0.4
    local want = x + d * (tn - t) + zz * math.sqrt(0.8 * 0.05)
    H.close(out:totable(), want:totable(), 1e-5, 1e-5)
    -- the last step is noise-free and draws nothing
    local st = g:get_state()
    local last = s:last_step(g, sit, x, t, tn)
    assert.same(st, g:get_state())
    H.close(last:totable(), (x + d * (tn - t)):totable(), 1e-5, 1e-5)
  end)

  it("has diffuse_nnx's diffusion coefficients, scaled by diffusion_coeff_norm", function()
    local c = 0.7
    local want = {
      constant = function(t) return c end,
      linear_kl = function(t) return c * (t * t / (1 - t) + t) end,
      linear = function(t) return c * t end,
      cos = function(t) return 0.25 * (c * math.cos(math.pi * t) + 1) ^ 2 end,
      concave = function(t) return 0.25 * (c * math.sin(math.pi * t) + 1) ^ 2 end,
    }
    for name, f in pairs(want) do
      local s = S.EulerMaruyama { diffusion_coeff = name, diffusion_coeff_norm = c }
      for _, t in ipairs { 0, 0.3, 0.9 } do H.close(s:w(t), f(t), 1e-15, 1e-15, name) end
    end
    local s = S.EulerMaruyama { diffusion_coeff = function(t) return 2 * t end }
    assert.equal(0.6, s:w(0.3))
  end)

  -- allowance: EM's bias is O(1/N); measured up to 0.013 (mean) and 0.047 (cov) at N = 100
  local N = 100
  local cases = {
    { "constant" }, { "linear" }, { "cos" }, { "concave" },
    -- infinite at t = 1: start just below
    { "linear_kl", { t_start = 0.99 } },
    { "a Lua function", { diffusion_coeff = function(t) return 0.5 * (1 - t) + 0.1 end } },
  }
  for i, case in ipairs(cases) do
    it("ends at the mixture's marginal with diffusion_coeff " .. case[1], function()
      local o = { num_sampling_steps = N, diffusion_coeff = case[1] }
      for k, v in pairs(case[2] or {}) do o[k] = v end
      local x = S.EulerMaruyama(o):sample(mf.Generator(100 + i), sit, z)
      SH.check_moments(x, gm, 2 / N, 10 / N, "EulerMaruyama " .. case[1])
    end)
  end

  it("refuses an infinite or negative coefficient with the time it happened", function()
    H.errors(function() S.EulerMaruyama { diffusion_coeff = "linear_kl", num_sampling_steps = 4 }:sample(mf.Generator(0), sit, z) end,
      "moonflow.EulerMaruyama:forward", "linear_kl", "t = 1", "t_start")
    H.errors(function()
      S.EulerMaruyama { diffusion_coeff = function() return -1 end }:sample(mf.Generator(0), sit, z)
    end, "is -1 at t = 1")
    H.errors(function() S.EulerMaruyama { diffusion_coeff = "quadratic" } end, "diffusion_coeff must be")
    H.errors(function() S.EulerMaruyama {}:sample(nil, sit, z) end, "rng must be an mf.Generator")
  end)

  it("takes the sample stream of an Rngs", function()
    local r1, r2 = mf.Rngs(4), mf.Rngs(4)
    local s = S.EulerMaruyama { num_sampling_steps = 3 }
    local a = s:sample(r1, sit, z:narrow(1, 1, 64))
    local b = s:sample(r2.sample, sit, z:narrow(1, 1, 64))
    assert.same(a:totable(), b:totable())
  end)
end)

