-- EulerJump with MeanFlow: the exact average velocity of one Gaussian (or of
-- each labelled component) takes noise to exact samples in one step.
local mf = require "moonflow"
local H = require "helpers"
local SH = require "samplers_helpers"

local S = mf.samplers
local I = mf.interfaces

describe("samplers: EulerJump", function()
  local g1 = mf.oracle.GaussianMixture { means = { { 1.5, -0.5 } }, stds = { 0.35 } }
  local mfi = I.MeanFlow { network = g1:network("meanflow") }

  it("one step from noise gives x = mu + s z exactly", function()
    local z = mf.Generator(4):normal { 1000, 2 }
    local x = S.EulerJump { num_sampling_steps = 1 }:sample(nil, mfi, z)
    local want = z * 0.35 + mf.tensor { { 1.5, -0.5 } }
    H.close(x:totable(), want:totable(), 1e-5, 1e-5)
    -- any number of jumps lands on the same points: each jump is exact
    local x4 = S.EulerJump { num_sampling_steps = 4 }:sample(nil, mfi, z)
    H.close(x4:totable(), want:totable(), 1e-5, 1e-5)
    -- Euler on the same u is not exact in one step (u(t, r) is not v(t))
    local e = S.Euler { num_sampling_steps = 1 }
    local xe = e:sample(nil, I.SiT { network = g1:network("sit") }, z)
    assert(((xe - want):abs():max():item()) > 0.1)
  end)

  it("one-step samples have the Gaussian's mean and covariance", function()
    local n = 65536
    local x = S.EulerJump { num_sampling_steps = 1 }:sample(nil, mfi, mf.Generator(5):normal { n, 2 })
    SH.check_moments(x, g1, 0, 0, "EulerJump one Gaussian")
  end)

  it("with labels, each sample jumps exactly to its own component; labels drawn by weight give the mixture", function()
    local gm = SH.gm
    local n = 32768
    local _, y = gm:sample(n, mf.Generator(8))
    local z = mf.Generator(9):normal { n, 2 }
    local mi = I.MeanFlow { network = gm:network("meanflow") }
    local x = S.EulerJump { num_sampling_steps = 1 }:sample(nil, mi, z, { cond = { y = y } })
    local c = gm:_const("f32")
    local want = c.mu:index_select(1, y) + c.sd:index_select(1, y) * z
    H.close(x:totable(), want:totable(), 1e-5, 1e-5)
    SH.check_moments(x, gm, 0, 0, "EulerJump labelled mixture")
  end)
end)
