-- The base Interface: statics, distribution names, time and noise sampling moments.
local mf = require "moonflow"
local H = require "helpers"
local G = require "interfaces_gauss"
local I = mf.interfaces

local function net() return G.new({ 0, 0 }, 1):sit_network() end

describe("Interface statics", function()
  it("mean_flat averages every dim but the first", function()
    local x = H.rand_table({ 3, 2, 4 }, 1)
    local m = I.Interface.mean_flat(mf.tensor(x))
    assert.same({ 3 }, m:shape())
    local e = {}
    for i = 1, 3 do
      local s = 0
      for _, v in ipairs(H.flatten(x[i])) do s = s + v end
      e[i] = s / 8
    end
    H.close(m:totable(), e, 1e-6, 1e-7)
  end)

  it("bcast_right appends trailing 1s, and refuses more dims", function()
    local x, y = mf.tensor({ 1, 2 }), mf.zeros({ 2, 3, 4 })
    assert.same({ 2, 1, 1 }, I.bcast_right(x, y):shape())
    assert.same({ 2, 3, 4 }, I.bcast_right(y, y):shape())
    assert.equal(2.5, I.bcast_right(2.5, y))
    H.errors(function() I.bcast_right(y, x) end, "bcast_right", "3 dims", "2, 3, 4", "1")
  end)

  it("t_shift = shift t / (1 + (shift - 1) t) for numbers and tensors", function()
    local ts = { 0, 0.1, 0.5, 0.9, 1 }
    for _, s in ipairs { 0.25, 1, 3 } do
      local e = H.map(function(t) return s * t / (1 + (s - 1) * t) end, ts)
      H.close(I.t_shift(mf.tensor(ts), s):totable(), e, 1e-6, 1e-7)
      assert.equal(e[3], I.t_shift(0.5, s))
    end
  end)
end)

describe("train_time_dist_type", function()
  it("accepts any case and underscores", function()
    for _, name in ipairs { "LogNormal", "log_normal", "LOGNORMAL", "logit_normal", "Uniform" } do
      local e = I.EDM { network = net(), train_time_dist_type = name }
      assert.equal(name:lower():gsub("_", ""), e.train_time_dist_type)
    end
    assert.equal("logitnormal", I.SiT { network = net(), train_time_dist_type = "Logit_Normal" }.train_time_dist_type)
  end)
  it("an unsupported distribution is an error naming it", function()
    H.errors(function() I.SiT { network = net(), train_time_dist_type = "lognormal" } end, "SiT", "lognormal", "not supported")
    H.errors(function() I.MeanFlow { network = net(), train_time_dist_type = "log_normal" } end, "MeanFlow", "log_normal")
    H.errors(function() I.EDM { network = net(), train_time_dist_type = "beta" } end, "EDM", "beta")
    H.errors(function() I.SiT { train_time_dist_type = "uniform" } end, "SiT", "network")
    H.errors(function() I.SiT { network = net(), t_mu = "a" } end, "SiT", "t_mu", "string")
    H.errors(function() I.SiT { network = net(), guidance_scale = 2 } end, "SiT", "unknown option guidance_scale")
    H.errors(function() I.EDM { network = net(), t_shift_base = 2 } end, "EDM", "unknown option t_shift_base")
  end)
end)

describe("sample_t and sample_n moments", function()
  local N = 200000
  local function mv(t)
    local m = t:mean():item()
    return m, ((t - m) ^ 2):mean():item()
  end
  it("uniform: mean 1/2, variance 1/12", function()
    local s = I.SiT { network = net(), rngs = mf.Rngs(1) }
    local m, v = mv(s:sample_t({ N }))
    assert.is_true(math.abs(m - 0.5) < 5 * math.sqrt(1 / 12 / N), "mean " .. m)
    assert.is_true(math.abs(v - 1 / 12) < 5 * math.sqrt((1 / 80 - 1 / 144) / N), "variance " .. v)
  end)
  it("lognormal: mean exp(mu + sigma^2/2)", function()
    local mu, sg = -0.3, 0.5
    local e = I.EDM { network = net(), train_time_dist_type = "lognormal", t_mu = mu, t_sigma = sg, rngs = mf.Rngs(2) }
    local m = mv(e:sample_t(N))
    local mean = math.exp(mu + sg * sg / 2)
    local var = (math.exp(sg * sg) - 1) * math.exp(2 * mu + sg * sg)
    assert.is_true(math.abs(m - mean) < 5 * math.sqrt(var / N), ("mean %g vs %g"):format(m, mean))
  end)
  it("logitnormal: logit t ~ N(t_mu, t_sigma^2)", function()
    local s = I.SiT { network = net(), train_time_dist_type = "logitnormal", t_mu = 0.4, t_sigma = 1.5, rngs = mf.Rngs(3) }
    local t = s:sample_t({ N })
    local m, v = mv((t / (1 - t)):log())
    assert.is_true(math.abs(m - 0.4) < 5 * 1.5 / math.sqrt(N), "mean " .. m)
    assert.is_true(math.abs(v - 2.25) < 5 * math.sqrt(2 * 2.25 ^ 2 / N), "variance " .. v)
  end)
  it("sample_n ~ N(n_mu, n_sigma^2) from rngs.noise", function()
    local s = I.SiT { network = net(), n_mu = 0.5, n_sigma = 2, rngs = mf.Rngs(4) }
    local m, v = mv(s:sample_n({ N / 4, 4 }))
    assert.is_true(math.abs(m - 0.5) < 5 * 2 / math.sqrt(N), "mean " .. m)
    assert.is_true(math.abs(v - 4) < 5 * math.sqrt(2 * 16 / N), "variance " .. v)
    local a = I.SiT { network = net(), rngs = mf.Rngs(9) }:sample_n({ 8 }):tolist()
    local b = I.SiT { network = net(), rngs = mf.Rngs(9) }:sample_n({ 8 }):tolist()
    assert.same(a, b)
  end)
end)
