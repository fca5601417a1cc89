-- mf.rf conversions: each formula against Lua doubles, round trips to 1e-12
-- on the float64 path and on the float-float path, and agreement of the two
-- paths (a child process runs with MOONFLOW_DISABLE_FP64=1).
local mf = require "moonflow"
local H = require "helpers"
local rf = mf.rf
local fp64 = mf.device().fp64

local B, W = 4, 6
local x0 = H.rand_table({ B, W }, 101, -2, 2)
local eps = H.rand_table({ B, W }, 102, -2, 2)
local tt = { 0.05, 0.3, 0.71, 0.95 }

local function rowmap(f, a, b)
  local out = {}
  for r = 1, B do
    out[r] = {}
    for j = 1, W do out[r][j] = f(a[r][j], b[r][j], tt[r]) end
  end
  return out
end

local ref = {
  add_noise = function(x, e, t) return (1 - t) * x + t * e end,
  pred_noise_to_pred_x0 = function(e, xt, t) return (xt - t * e) / math.max(1 - t, 1e-6) end,
  pred_x0_from_flow = function(v, xt, t) return xt - t * v end,
  x0_to_eps = function(x, xt, t) return (xt - (1 - t) * x) / math.max(t, 1e-6) end,
  x0_to_flow = function(x, xt, t) return (xt - x) / math.max(t, 1e-6) end,
}

local xt_ref = rowmap(ref.add_noise, x0, eps)

describe("rf conversions, float64 path", function()
  if not fp64 then
    it("needs fp64", function() pending("device without fp64") end)
    return
  end
  local T = function(v) return mf.tensor(v, "f64") end
  for name, f in pairs(ref) do
    it(name .. " matches Lua doubles and keeps the dtype", function()
      local a = name == "add_noise" and x0 or (name:find("^x0") and x0 or eps)
      local b = name == "add_noise" and eps or xt_ref
      local y = rf[name](T(a), T(b), T(tt))
      assert.equal("f64", y:dtype())
      H.close(y:totable(), rowmap(f, a, b), 1e-13, 1e-13, name)
      local y32 = rf[name](mf.tensor(a), mf.tensor(b), mf.tensor(tt))
      assert.equal("f32", y32:dtype())
    end)
  end

  it("round trips x0 -> eps -> x0 and x0 -> flow -> x0 to 1e-12", function()
    local xt = rf.add_noise(T(x0), T(eps), T(tt))
    local e = rf.x0_to_eps(T(x0), xt, T(tt))
    H.close(e:totable(), eps, 1e-12, 1e-12, "eps")
    H.close(rf.pred_noise_to_pred_x0(e, xt, T(tt)):totable(), x0, 1e-12, 1e-12, "x0 via eps")
    local v = rf.x0_to_flow(T(x0), xt, T(tt))
    H.close(rf.pred_x0_from_flow(v, xt, T(tt)):totable(), x0, 1e-12, 1e-12, "x0 via flow")
  end)

  it("t as a Lua number broadcasts and stays exact", function()
    local y = rf.add_noise(T(x0), T(eps), 0.3)
    H.close(y:totable(), H.map(function(a, b) return 0.7 * a + 0.3 * b end, x0, eps), 1e-15, 1e-15)
  end)

  it("f32 data are computed in float64 and rounded once", function()
    local y = rf.x0_to_eps(mf.tensor(x0), mf.tensor(xt_ref), mf.tensor(tt))
    local a, b, t32 = mf.tensor(x0):totable(), mf.tensor(xt_ref):totable(), mf.tensor(tt):totable()
    local e = {}
    for r = 1, B do
      e[r] = {}
      for j = 1, W do
        e[r][j] = string.unpack("<f", string.pack("<f", (b[r][j] - (1 - t32[r]) * a[r][j]) / t32[r]))
      end
    end
    H.close(y:totable(), e, 0, 0, "correctly rounded")
  end)

  it("differentiates through the data operands", function()
    local v = T(eps):requires_grad()
    local xt = T(xt_ref):requires_grad()
    rf.pred_x0_from_flow(v, xt, T(tt)):sum():backward()
    local gv = {}
    for r = 1, B do gv[r] = {}; for j = 1, W do gv[r][j] = -tt[r] end end
    H.close(v.grad:totable(), gv, 1e-15, 1e-15, "d/dv = -t")
    H.close(xt.grad:totable(), H.map(function() return 1 end, x0), 0, 0, "d/dx_t = 1")
  end)

  it("guards the divisions at t = 0 and t = 1", function()
    local z = rf.x0_to_eps(T({ { 1 } }), T({ { 2 } }), T({ 0 })):item()
    assert.equal(1e6, z)
    assert.equal(2e6, rf.pred_noise_to_pred_x0(T({ { 0 } }), T({ { 2 } }), T({ 1 })):item())
  end)

  it("rf_alpha and rf_sigma", function()
    H.close(rf.rf_alpha(T(tt)):totable(), H.map(function(t) return 1 - t end, tt), 0, 0)
    H.close(rf.rf_sigma(T(tt)):totable(), tt, 0, 0)
    assert.equal(0.75, rf.rf_alpha(0.25))
    assert.equal("f32", rf.rf_alpha(mf.tensor(tt)):dtype())
  end)
end)

describe("rf conversions, float-float path", function()
  local F = rf.ff
  it("splits doubles exactly into (hi, lo)", function()
    local v = { 0.1, -1 / 3, math.pi, 1e-8 + 1 }
    local f = F(v)
    assert.equal("f32", f.hi:dtype())
    H.close(f:totable(), v, 2 ^ -47, 0, "hi + lo")
  end)
  it("round trips x0 -> eps -> x0 and x0 -> flow -> x0 to 1e-12", function()
    local xt = rf.add_noise(F(x0), F(eps), F(tt))
    assert.is_true(rf.is_ff(xt))
    H.close(xt:totable(), xt_ref, 1e-12, 1e-12, "x_t")
    local e = rf.x0_to_eps(F(x0), xt, F(tt))
    H.close(e:totable(), eps, 1e-12, 1e-12, "eps")
    H.close(rf.pred_noise_to_pred_x0(e, xt, F(tt)):totable(), x0, 1e-12, 1e-12, "x0 via eps")
    local v = rf.x0_to_flow(F(x0), xt, 0.3)
    H.close(rf.pred_x0_from_flow(v, xt, 0.3):totable(), x0, 1e-12, 1e-12, "x0 via flow")
  end)
  it("each formula to 1e-12 against Lua doubles", function()
    for name, f in pairs(ref) do
      local a = name == "add_noise" and x0 or (name:find("^x0") and x0 or eps)
      local b = name == "add_noise" and eps or xt_ref
      H.close(rf[name](F(a), F(b), F(tt)):totable(), rowmap(f, a, b), 1e-12, 1e-12, name)
    end
    H.close(rf.rf_alpha(F(tt)):totable(), H.map(function(t) return 1 - t end, tt), 1e-15, 1e-15)
  end)
  it("errors name the function and the values", function()
    H.errors(function() rf.add_noise(mf.zeros({ 2, 3 }), mf.zeros({ 2, 4 }), 0.5) end, "rf.add_noise", "{2, 3}", "{2, 4}")
    H.errors(function() rf.x0_to_eps(mf.zeros({ 2, 3 }), mf.zeros({ 2, 3 }), mf.zeros({ 3 })) end,
      "rf.x0_to_eps", "3 values", "batch of 2")
    H.errors(function() rf.x0_to_flow(mf.zeros({ 2, 3 }), mf.zeros({ 2, 3 }), "a") end, "rf.x0_to_flow", "string")
    H.errors(function() rf.add_noise({}, mf.zeros({ 2 }), 0.5) end, "rf.add_noise", "argument 1")
  end)
end)

-- The child computes with fp64 disabled and prints %.17g values, one per line.
local child = [[
local mf = require "moonflow"
local rf = mf.rf
local H = require "helpers"
assert(not mf.device().fp64, "fp64 should be disabled")
local B, W = 4, 6
local x0 = H.rand_table({ B, W }, 101, -2, 2)
local eps = H.rand_table({ B, W }, 102, -2, 2)
local tt = { 0.05, 0.3, 0.71, 0.95 }
local xt = rf.add_noise(rf.ff(x0), rf.ff(eps), rf.ff(tt))
local e = rf.x0_to_eps(rf.ff(x0), xt, rf.ff(tt))
local back = rf.pred_noise_to_pred_x0(e, xt, rf.ff(tt))
local f32 = rf.x0_to_flow(mf.tensor(x0), mf.tensor(H.flatten(xt:totable())):reshape({ B, W }), mf.tensor(tt))
for _, t in ipairs { xt:totable(), e:totable(), back:totable(), f32:totable() } do
  for _, v in ipairs(H.flatten(t)) do print(("%.17g"):format(v)) end
end
]]

describe("the float-float path in a process without fp64", function()
  it("agrees with the float64 path to 1e-12 (and f32 results agree to rounding)", function()
    -- stdout only: the child's stderr is captured apart (a compiler's
    -- "N warnings generated." there once parsed as data) and must be empty
    local out, err, ok = require("child_process").run(child, { MOONFLOW_DISABLE_FP64 = "1" })
    assert.is_true(ok, "child process failed: " .. err .. out)
    assert.equal("", err)
    local vals = {}
    for line in out:gmatch("[^\n]+") do
      local v = tonumber(line)
      if not v then error("child process failed: " .. out) end
      vals[#vals + 1] = v
    end
    local n = B * W
    assert.equal(4 * n, #vals)
    local function part(k) return { table.unpack(vals, (k - 1) * n + 1, k * n) } end
    -- the same computations here, on the float64 path where there is one
    local xt, e
    if fp64 then
      local T = function(v) return mf.tensor(v, "f64") end
      xt = rf.add_noise(T(x0), T(eps), T(tt))
      e = rf.x0_to_eps(T(x0), xt, T(tt))
    else
      xt = rf.add_noise(rf.ff(x0), rf.ff(eps), rf.ff(tt))
      e = rf.x0_to_eps(rf.ff(x0), xt, rf.ff(tt))
    end
    H.close(part(1), H.flatten(xt:totable()), 1e-12, 1e-12, "x_t: float-float vs float64")
    H.close(part(2), H.flatten(e:totable()), 1e-12, 1e-12, "eps: float-float vs float64")
    H.close(part(3), H.flatten(x0), 1e-12, 1e-12, "round trip without fp64")
    local f32 = rf.x0_to_flow(mf.tensor(x0), mf.tensor(H.flatten(xt:totable())):reshape({ B, W }), mf.tensor(tt))
    H.close(part(4), H.flatten(f32:totable()), 2 ^ -23, 1e-7, "f32 results of both paths")
  end)
end)
