-- Stochastic samplers against the exact Gaussian-mixture oracle:
-- the EDM stochastic sampler (Karras et al. 2022, Algorithm 2).
local mf = require "moonflow"
local H = require "helpers"
local SH = require "samplers_helpers"

local S = mf.samplers
local gm = SH.gm

describe("samplers: EDM (Karras et al. 2022, Algorithm 2)", function()
  local n = 32768
  local z = mf.Generator(41):normal { n, 2 }
  local edm = SH.edm()

  it("with S_churn = 0 it is Heun on the EDM grid", function()
    local zz = z:narrow(1, 1, 256)
    local a = S.EDM { num_sampling_steps = 12 }:sample(mf.Generator(0), edm, zz)
    local b = S.Heun { num_sampling_steps = 12, sampling_time_dist = "exp" }:sample(nil, edm, zz)
    assert.same(a:totable(), b:totable())
  end)

  it("one churned step: x_hat = x + sqrt(s_hat^2 - s^2) S_noise z, then Heun from s_hat", function()
    local B = 500
    local x = mf.Generator(3):normal { B, 2 } * 2
    local s = S.EDM { S_churn = 4, S_noise = 1.01 }
    local g = mf.Generator(12)
    local g2 = mf.Generator(12)
    local sig, sn = 2.0, 1.2
    local out = s:forward(g, edm, x, sig, sn, { num_steps = 10 })
    local gamma = math.min(4 / 10, math.sqrt(2) - 1)
    local sh = sig * (1 + gamma)
    local xh = x + g2:normal { B, 2 } * (math.sqrt(sh * sh - sig * sig) * 1.01)
    -- d = (x - D(x; sigma)) / sigma from the exact denoiser
    local function d(xx, ss) return (xx - gm:edm_denoiser(xx, ss)) / ss end
    local d1 = d(xh, sh)
    local xp = xh + d1 * (sn - sh)
    local want = xh + (d1 + d(xp, sn)) * ((sn - sh) / 2)
    H.close(out:totable(), want:totable(), 1e-4, 1e-4)
    -- outside [S_tmin, S_tmax] no churn: the generator is untouched
    local s2 = S.EDM { S_churn = 4, S_tmin = 0.1, S_tmax = 1.5 }
    local st = g:get_state()
    s2:forward(g, edm, x, sig, sn, { num_steps = 10 })
    assert.same(st, g:get_state())
  end)

  it("with S_churn > 0 it samples the mixture", function()
    -- allowance: measured bias 0.006 (mean) and 0.005 (cov) at 64 steps; O(1/N^2)
    local N = 64
    local x = S.EDM { num_sampling_steps = N, S_churn = 10 }:sample(mf.Generator(5), edm, z)
    SH.check_moments(x, gm, 30 / N ^ 2, 60 / N ^ 2, "EDM S_churn = 10")
    local y = S.EDM { num_sampling_steps = N, S_churn = 40, S_tmin = 0.05, S_tmax = 50, S_noise = 1.003 }
        :sample(mf.Generator(6), edm, z)
    SH.check_moments(y, gm, 30 / N ^ 2, 60 / N ^ 2, "EDM S_churn = 40")
  end)

  it("validates its options", function()
    H.errors(function() S.EDM { S_churn = -1 } end, "moonflow.EDM", "S_churn")
    H.errors(function() S.EDM { S_tmin = 2, S_tmax = 1 } end, "S_tmax")
    H.errors(function() S.EDM { S_churn = 1 }:sample(nil, edm, z) end, "rng must be an mf.Generator")
  end)
end)
