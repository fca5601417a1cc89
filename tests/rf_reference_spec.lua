-- mf.rf against fastgen's flow_matching helpers where dtypes mix: every
-- operand enters float64 as it is (an f64 noise is not rounded to the
-- latents' f32 first), and the result takes fastgen's dtype: x0's for
-- add_noise, x0_to_eps and x0_to_flow, noisy_latents' (argument 2) for
-- pred_noise_to_pred_x0 and pred_x0_from_flow. Expected values are the
-- formulas in Lua doubles, rounded once to f32 where the result is f32.
-- Also fastgen's truncated lognormal: min_t is raised to 1e-12.
local mf = require "moonflow"
local H = require "helpers"
local rf = mf.rf
local fp64 = mf.device().fp64

local function f32(v) return (string.unpack("<f", string.pack("<f", v))) end

local B, W = 4, 16
local tt = { 0.05, 0.3, 0.75, 0.95 }
local A = H.rand_table({ B, W }, 201, -2, 2) -- full 53-bit doubles
local Bv = H.rand_table({ B, W }, 202, -2, 2)

-- fastgen's formulas, in the order its code evaluates them
local ref = {
  add_noise = function(x, e, t) return x * (1 - t) + e * t end,
  pred_noise_to_pred_x0 = function(e, xt, t) return (xt - t * e) / math.max(1 - t, 1e-6) end,
  pred_x0_from_flow = function(v, xt, t) return xt - t * v end,
  x0_to_eps = function(x, xt, t) return (xt - (1 - t) * x) / math.max(t, 1e-6) end,
  x0_to_flow = function(x, xt, t) return (xt - x) / math.max(t, 1e-6) end,
}
-- the argument whose dtype the result takes (fastgen's original_dtype)
local KEEP = { add_noise = 1, pred_noise_to_pred_x0 = 2, pred_x0_from_flow = 2, x0_to_eps = 1, x0_to_flow = 1 }

local function rows(f, a, b, round)
  local out = {}
  for r = 1, B do
    out[r] = {}
    for j = 1, W do
      local v = f(a[r][j], b[r][j], tt[r])
      out[r][j] = round and f32(v) or v
    end
  end
  return out
end

describe("rf conversions with mixed f32 / f64 operands (fastgen's dtypes)", function()
  if not fp64 then
    it("needs fp64", function() pending("device without fp64") end)
    return
  end
  local T64 = function(v) return mf.tensor(v, "f64") end
  local T32 = function(v) return mf.tensor(v, "f32") end

  for name, f in pairs(ref) do
    for _, dts in ipairs { { "f32", "f64" }, { "f64", "f32" } } do
      it(("%s(%s, %s) returns argument %d's dtype, operands unrounded"):format(name, dts[1], dts[2], KEEP[name]), function()
        local mk = { f32 = T32, f64 = T64 }
        local a, b = mk[dts[1]](A), mk[dts[2]](Bv)
        local al, bl = a:totable(), b:totable() -- the values as stored (f32 rounded)
        local y = rf[name](a, b, T32(tt))
        local out = dts[KEEP[name]]
        assert.equal(out, y:dtype())
        local t32 = T32(tt):totable()
        local ex = {}
        for r = 1, B do
          ex[r] = {}
          for j = 1, W do
            local v = f(al[r][j], bl[r][j], t32[r])
            ex[r][j] = out == "f32" and f32(v) or v
          end
        end
        if out == "f32" then
          H.close(y:totable(), ex, 0, 0, name .. ": rounded once")
        else
          H.close(y:totable(), ex, 1e-15, 1e-15, name)
        end
      end)
    end
  end

  it("add_noise(f32 x0, f64 eps): rounding eps to f32 first would change some results", function()
    local x0 = T32(A):totable()
    local once = rows(ref.add_noise, x0, Bv, true)
    local twice = rows(function(x, e, t) return ref.add_noise(x, f32(e), t) end, x0, Bv, true)
    local differ = 0
    for r = 1, B do for j = 1, W do if once[r][j] ~= twice[r][j] then differ = differ + 1 end end end
    assert.is_true(differ > 0, "the inputs tell the two apart")
    local y = rf.add_noise(T32(A), T64(Bv), T64(tt))
    H.close(y:totable(), once, 0, 0, "x_t from the unrounded noise")
  end)

  it("mixed operands stay differentiable: d/dx0 = 1 - t in f32, d/deps = t in f64", function()
    local x0 = T32(A):requires_grad()
    local e = T64(Bv):requires_grad()
    rf.add_noise(x0, e, T32(tt)):sum():backward()
    assert.equal("f32", x0.grad:dtype())
    assert.equal("f64", e.grad:dtype())
    local t32 = T32(tt):totable()
    local gx, ge = {}, {}
    for r = 1, B do
      gx[r], ge[r] = {}, {}
      for j = 1, W do gx[r][j], ge[r][j] = f32(1 - t32[r]), t32[r] end
    end
    H.close(x0.grad:totable(), gx, 0, 0, "d/dx0")
    H.close(e.grad:totable(), ge, 0, 0, "d/deps")
  end)
end)

describe("rf.sample_timesteps lognormal like fastgen's _truncated_lognormal", function()
  it("min_t = 0 truncates at 1e-12: P(t < 1e-6) from Phi of the log-bounds", function()
    local N, mu, sd = 20000, 0, 100
    local dt = fp64 and "f64" or "f32"
    local t = rf.sample_timesteps(N, { time_dist_type = "lognormal", p_mean = mu, p_std = sd, min_t = 0, max_t = 1 },
      { generator = mf.Generator(3), dtype = dt })
    local lo = t:min():item()
    assert.is_true(lo >= f32(1e-12) * (1 - 1e-7), ("smallest t %.17g is below 1e-12"):format(lo))
    local Phi = rf._Phi
    local z0, z6, z1 = Phi((math.log(1e-12) - mu) / sd), Phi((math.log(1e-6) - mu) / sd), Phi((0 - mu) / sd)
    local p = (z6 - z0) / (z1 - z0)
    local frac = t:lt(1e-6):to("f32"):mean():item()
    local tol = 5 * math.sqrt(p * (1 - p) / N)
    assert.is_true(math.abs(frac - p) < tol, ("P(t < 1e-6) = %.4f, expected %.4f +- %.4f"):format(frac, p, tol))
  end)
end)
