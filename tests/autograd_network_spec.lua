-- Networks under both modes: layer functions and a float64 VelocityMLP
-- against central finite differences, and MeanFlow's pattern (a loss built
-- from jvp's primal output, the tangent a constant) differentiated w.r.t.
-- the parameters.
local mf = require "moonflow"
local H = require "helpers"
local G = require "autograd_check"
local nn = mf.nn
local F = nn.functional

describe("layer functions", function()
  it("linear with and without activation, 2-D and 3-D input", function()
    G.check("linear", function(x, w, b) return F.linear(x, w, b) end, { { { 4, 3 } }, { { 5, 3 } }, { { 5 } } })
    G.check("linear silu", function(x, w, b) return F.linear(x, w, b, "silu") end, { { { 4, 3 } }, { { 5, 3 } }, { { 5 } } })
    G.check("linear 3-D gelu", function(x, w, b) return F.linear(x, w, b, "gelu") end, { { { 2, 2, 3 } }, { { 5, 3 } }, { { 5 } } })
    G.check("linear no bias", function(x, w) return F.linear(x, w) end, { { { 4, 3 } }, { { 5, 3 } } })
  end)

  it("layer_norm in x, weight and bias", function()
    G.check("layer_norm", function(x, w, b) return F.layer_norm(x, w, b, 1e-5) end,
      { { { 4, 6 }, lo = -2, hi = 3 }, { { 6 } }, { { 6 } } })
    G.check("layer_norm 3-D no affine", function(x) return F.layer_norm(x, nil, nil, 1e-5) end, { { { 2, 3, 5 } } })
  end)

  it("fused linear: every activation, a residual, grads to some inputs only", function()
    for _, act in ipairs { "silu", "gelu", "tanh", "relu" } do
      G.check("linear+residual " .. act, function(x, w, b, r) return F.linear(x, w, b, act, r) end,
        { { { 4, 3 } }, { { 5, 3 } }, { { 5 } }, { { 4, 5 } } }, { seed = act == "relu" and 5 or 11 })
    end
    G.check("linear residual no bias", function(x, w, r) return F.linear(x, w, nil, nil, r) end,
      { { { 4, 3 } }, { { 5, 3 } }, { { 4, 5 } } })
    -- only w requires grad: x gets none, and w's gradient is still right
    local x = mf.randn({ 4, 3 }, { dtype = "f64" })
    local w = mf.randn({ 5, 3 }, { dtype = "f64" }):requires_grad()
    F.linear(x, w, nil, "silu"):sum():backward()
    assert.is_nil(x.grad)
    local wc = w:detach():requires_grad()
    F.linear_composite(x, wc, nil, "silu"):sum():backward()
    H.close(w.grad:tolist(), wc.grad:tolist(), 1e-12, 1e-14)
  end)

  it("fused layer_norm with an added input and an activation", function()
    G.check("layer_norm+c silu", function(x, w, b, c) return F.layer_norm(x, w, b, 1e-5, c, "silu") end,
      { { { 4, 6 }, lo = -2, hi = 3 }, { { 6 } }, { { 6 } }, { { 4, 6 } } })
    G.check("layer_norm+c gelu no affine", function(x, c) return F.layer_norm(x, nil, nil, 1e-5, c, "gelu") end,
      { { { 3, 5 } }, { { 3, 5 } } })
    -- constant weight and bias: the jvp takes the one-kernel path
    local W = mf.tensor({ 0.5, -1.2, 2.0, 0.3, 1.1, -0.7 }, { dtype = "f64" })
    local Bv = mf.tensor({ 0.1, 0.2, -0.3, 0.4, 0.0, -0.5 }, { dtype = "f64" })
    for _, act in ipairs { "silu", "gelu", "tanh", "none" } do
      G.check("layer_norm const w, b, " .. act, function(x, c) return F.layer_norm(x, W, Bv, 1e-5, c, act) end,
        { { { 4, 6 }, lo = -2, hi = 3 }, { { 4, 6 } } })
    end
    G.check("layer_norm const, x only", function(x) return F.layer_norm(x, W, nil, 1e-5, nil, "silu") end,
      { { { 3, 6 } } })
    G.check("layer_norm tanh, bias only", function(x, b) return F.layer_norm(x, nil, b, 1e-5, nil, "tanh") end,
      { { { 3, 5 } }, { { 5 } } })
  end)

  it("fused layers equal their composite references", function()
    local g = mf.Generator(3)
    local x = g:normal({ 6, 7 }, { dtype = "f64" })
    local w, b = g:normal({ 7 }, { dtype = "f64" }), g:normal({ 7 }, { dtype = "f64" })
    H.close(F.layer_norm(x, w, b, 1e-5):tolist(), F.layer_norm_composite(x, w, b, 1e-5):tolist(), 1e-12, 1e-13)
    local W = g:normal({ 4, 7 }, { dtype = "f64" })
    local bb = g:normal({ 4 }, { dtype = "f64" })
    H.close(F.linear(x, W, bb, "gelu"):tolist(), F.linear_composite(x, W, bb, "gelu"):tolist(), 1e-12, 1e-13)
    -- float32 too
    local x32, W32, b32 = x:to("f32"), W:to("f32"), bb:to("f32")
    H.close(F.linear(x32, W32, b32, "silu"):tolist(), F.linear_composite(x32, W32, b32, "silu"):tolist(), 1e-5, 1e-5)
    H.close(F.layer_norm(x32, w:to("f32"), b:to("f32")):tolist(),
      F.layer_norm_composite(x32, w:to("f32"), b:to("f32")):tolist(), 1e-4, 1e-5)
  end)

  it("timestep features in t", function()
    G.check("timestep_features", function(t) return F.timestep_features(t, 8, 10000, 10, "f64") end, { { { 3 } } })
  end)
end)

describe("VelocityMLP in float64", function()
  local net = nn.VelocityMLP { dim = 3, hidden = 16, depth = 2, num_classes = 4, use_dt = true, rngs = mf.Rngs(7),
    t_scale = 10 }
  net:to("f64")
  local y = mf.tensor({ 1, 4, 0 }, { dtype = "i32" })
  local dtv = mf.tensor({ 0.1, 0.3, 0.05 }, { dtype = "f64" })

  it("jvp and vjp w.r.t. (x, t) match finite differences", function()
    G.check("VelocityMLP(x, t)", function(x, t) return (net(x, t, { y = y, dt = dtv })) end,
      { { { 3, 3 } }, { { 3 }, lo = 0.1, hi = 0.9 } }, { rtol = 1e-5, atol = 1e-8 })
  end)

  it("jvp w.r.t. (x, t, dt) for MeanFlow's tangent (v, 1, 1)", function()
    G.check("VelocityMLP(x, t, dt)", function(x, t, d) return (net(x, t, { y = y, dt = d })) end,
      { { { 3, 3 } }, { { 3 }, lo = 0.1, hi = 0.9 }, { { 3 }, lo = 0, hi = 0.5 } }, { rtol = 1e-5, atol = 1e-8 })
  end)

  it("the gradient of a loss built from jvp's primal output matches finite differences", function()
    -- u, du = jvp(u_theta, (x, t, dt), (v, 1, 1)); target = v - dt * du (a constant);
    -- L(theta) = mean((u - target)^2). dL/dtheta flows through u only.
    local g = mf.Generator(9)
    local x = g:normal({ 3, 3 }, { dtype = "f64" })
    local v = g:normal({ 3, 3 }, { dtype = "f64" })
    local t = mf.tensor({ 0.3, 0.6, 0.8 }, { dtype = "f64" })
    local d = mf.tensor({ 0.1, 0.4, 0.2 }, { dtype = "f64" })
    local ones = mf.ones({ 3 }, { dtype = "f64" })
    local function u_fn(xx, tt, dd) return (net(xx, tt, { y = y, dt = dd })) end
    local u, du = mf.autograd.jvp(u_fn, { x, t, d }, { v, ones, ones })

    assert.is_nil(du._node) -- the tangent is a constant to the tape
    assert.is_not_nil(u._node)
    local target = v - du * d:reshape { 3, 1 }
    local loss = ((u - target) ^ 2):mean()
    net:zero_grad()
    loss:backward()
    local tgt = target:tolist()
    local function L_at()
      local uu = mf.no_grad(u_fn, x, t, d):tolist()
      local s = 0
      for k = 1, #uu do s = s + (uu[k] - tgt[k]) ^ 2 end
      return s / #uu
    end
    local flat = net:flat_parameters()
    local gflat = net:flat_gradients()
    local h = 1e-6
    local checked = 0
    for _, name in ipairs { "in_proj.weight", "t_embed.linear1.weight", "y_embed.weight", "dt_embed.linear2.bias",
      "blocks.0.norm.weight", "blocks.1.linear.weight", "final_norm.bias", "out_proj.weight" } do
      local p = net:state_dict()[name]
      local off = p:storage_offset()
      local gp = p.grad:tolist()
      for _, j in ipairs { 1, math.max(1, p:numel() // 2), p:numel() } do
        -- row 4 of y_embed (the label 3) is never selected: its gradient is exactly 0
        local cell = flat:narrow(1, off + j, 1)
        local x0 = cell:item()
        mf.no_grad(function() cell:fill_(x0 + h) end)
        local lp = L_at()
        mf.no_grad(function() cell:fill_(x0 - h) end)
        local lm = L_at()
        mf.no_grad(function() cell:fill_(x0) end)
        H.close({ gp[j] }, { (lp - lm) / (2 * h) }, 1e-5, 1e-9, name .. "[" .. j .. "]")
        H.close({ gflat:narrow(1, off + j, 1):item() }, { gp[j] }, 0, 0, "grad is a view into the flat buffer")
        checked = checked + 1
      end
    end
    assert.equal(24, checked)
  end)
end)

-- Both kernel shapes of the fused layers (row runs for CPUs, a work-group per
-- row for GPUs) run on any device: check each against finite differences,
-- with more than 64 rows so the column sums take their two-pass form.
describe("fused layers in both kernel shapes", function()
  for _, path in ipairs { "run", "wg" } do
    it(path, function()
      local prev = mf.core.nn_path(path)
      local ok, err = pcall(function()
        G.check("linear silu " .. path, function(x, w, b, r) return F.linear(x, w, b, "silu", r) end,
          { { { 70, 3 } }, { { 5, 3 } }, { { 5 } }, { { 70, 5 } } })
        G.check("layer_norm " .. path, function(x, w, b, c) return F.layer_norm(x, w, b, 1e-5, c, "gelu") end,
          { { { 67, 6 }, lo = -2, hi = 3 }, { { 6 } }, { { 6 } }, { { 67, 6 } } })
        local W = mf.tensor({ 0.5, -1.2, 2.0, 0.3, 1.1, -0.7, 0.9, 1.3, -0.2, 0.4, 0.8, 1.5, -1.1, 0.6, 0.2, -0.9, 1.0 },
          { dtype = "f64" })
        G.check("layer_norm jvp " .. path, function(x, c) return F.layer_norm(x, W, nil, 1e-5, c, "silu") end,
          { { { 5, 17 } }, { { 5, 17 } } })
        -- gradients added straight into preset flat-buffer grads (both two-pass sums)
        local net = nn.VelocityMLP { dim = 3, hidden = 17, depth = 1, rngs = mf.Rngs(11) }
        net:to("f64")
        local x = mf.Generator(12):normal({ 80, 3 }, { dtype = "f64" })
        local t = mf.Generator(13):uniform({ 80 }, { dtype = "f64" })
        net:zero_grad()
        net(x, t):square():sum():backward()
        local got = net:flat_gradients():tolist()
        -- the same gradients through plain leaves (no preset grads)
        local sd = net:state_dict()
        local leaves = {}
        for name, p in pairs(sd) do leaves[name] = p:detach():clone():requires_grad() end
        local other = nn.VelocityMLP { dim = 3, hidden = 17, depth = 1, rngs = mf.Rngs(11) }
        other:to("f64")
        for name, p in other:named_parameters() do
          local owner, field = other, nil
          for part in name:gmatch("[^.]+") do
            if field then owner = owner[field] end
            field = part
          end
          owner[field] = leaves[name]
        end
        other(x, t):square():sum():backward()
        for name, p in net:named_parameters() do
          H.close(p.grad:tolist(), leaves[name].grad:tolist(), 1e-10, 1e-12, path .. " " .. name)
        end
        assert.is_true(#got > 0)
      end)
      mf.core.nn_path(prev)
      if not ok then error(err, 0) end
    end)
  end
end)
