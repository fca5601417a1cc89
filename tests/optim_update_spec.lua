-- AdamW, SGD, clipping, schedules and EMA against textbook updates computed
-- in Lua doubles (float64 buffers, several steps).
local mf = require "moonflow"
local H = require "helpers"
local optim = mf.optim

local function f64(t) return mf.tensor(t, { dtype = "f64" }) end
local function set(dst, vals) mf.no_grad(function() dst:copy_(f64(vals)) end) end

local P0 = { 0.5, -1.2, 2.0, 0.0, -0.3, 1.1 }
local GRADS = {
  { 0.1, -0.2, 0.3, 1.5, -0.7, 0.05 },
  { -0.4, 0.1, 0.2, -1.0, 0.6, 0.0 },
  { 0.3, 0.3, -0.5, 0.2, 0.1, -0.9 },
  { 2.0, -1.0, 0.5, 0.5, -0.2, 0.4 },
}

local function norm(g) local s = 0; for _, v in ipairs(g) do s = s + v * v end; return math.sqrt(s) end

describe("AdamW", function()
  it("matches the textbook update with decoupled weight decay, bias correction, clipping and a schedule", function()
    local params, grads = f64(P0), f64(GRADS[1])
    local sched = optim.lr.cosine(0.1, 4, { warmup = 1, min_lr = 0.01 })
    local opt = optim.AdamW({ params = params, grads = grads },
      { lr = sched, betas = { 0.8, 0.95 }, eps = 1e-6, weight_decay = 0.1, max_grad_norm = 1.5 })
    local p, m, v = {}, {}, {}
    for i, x in ipairs(P0) do p[i], m[i], v[i] = x, 0, 0 end
    for t, g in ipairs(GRADS) do
      set(grads, g)
      opt:step()
      local lr = sched(t)
      local c = math.min(1, 1.5 / (norm(g) + 1e-6))
      for i = 1, #p do
        local gi = c * g[i]
        p[i] = p[i] - lr * 0.1 * p[i]
        m[i] = 0.8 * m[i] + 0.2 * gi
        v[i] = 0.95 * v[i] + 0.05 * gi * gi
        local mh, vh = m[i] / (1 - 0.8 ^ t), v[i] / (1 - 0.95 ^ t)
        p[i] = p[i] - lr * mh / (math.sqrt(vh) + 1e-6)
      end
      H.close(params:totable(), p, 1e-12, 1e-14, "AdamW step " .. t)
      H.close({ opt:grad_norm():item() }, { norm(g) }, 1e-12)
    end
    H.close(opt.m:totable(), m, 1e-12, 1e-14)
    H.close(opt.v:totable(), v, 1e-12, 1e-14)
    assert.equal(4, opt.step_count)
  end)

  it("in float32 agrees with the double reference to float precision", function()
    local params, grads = mf.tensor(P0), mf.tensor(GRADS[1])
    local opt = optim.AdamW({ params = params, grads = grads }, { lr = 0.05, weight_decay = 0 })
    local p, m, v = {}, {}, {}
    for i, x in ipairs(P0) do p[i], m[i], v[i] = x, 0, 0 end
    for t, g in ipairs(GRADS) do
      mf.no_grad(function() grads:copy_(mf.tensor(g)) end)
      opt:step()
      for i = 1, #p do
        m[i] = 0.9 * m[i] + 0.1 * g[i]
        v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
        p[i] = p[i] - 0.05 * (m[i] / (1 - 0.9 ^ t)) / (math.sqrt(v[i] / (1 - 0.999 ^ t)) + 1e-8)
      end
    end
    H.close(params:totable(), p, 1e-5, 1e-6)
  end)

  it("resumes from its state_dict exactly", function()
    local function run(split)
      local params, grads = f64(P0), f64(GRADS[1])
      local opt = optim.AdamW({ params = params, grads = grads }, { lr = 0.1 })
      for t = 1, 4 do
        if t == split then
          local sd = opt:state_dict()
          local saved = { step = sd.step, exp_avg = sd.exp_avg:clone(), exp_avg_sq = sd.exp_avg_sq:clone() }
          opt = optim.AdamW({ params = params, grads = grads }, { lr = 0.1 })
          opt:load_state_dict(saved)
        end
        set(grads, GRADS[t])
        opt:step()
      end
      return params:totable()
    end
    H.close(run(3), run(nil), 0, 0)
    local opt = optim.AdamW({ params = f64(P0), grads = f64(P0) })
    H.errors(function() opt:load_state_dict { step = 1, exp_avg = f64 { 1 }, exp_avg_sq = f64 { 1 } } end,
      "moonflow.optim.AdamW.load_state_dict", "1 elements")
  end)

  it("checks its options", function()
    local t = { params = f64(P0), grads = f64(P0) }
    H.errors(function() optim.AdamW(t, { lr = -1 }) end, "moonflow.optim.AdamW", "lr", "-1")
    H.errors(function() optim.AdamW(t, { betas = { 1.5, 0.9 } }) end, "betas[1]", "1.5")
    H.errors(function() optim.AdamW(42) end, "moonflow.optim.AdamW", "number")
    H.errors(function() mf.core.adamw_(f64(P0), f64 { 1, 2 }, f64(P0), f64(P0), { bc1 = 1, bc2 = 1 }) end,
      "moonflow.adamw", "6", "2")
  end)
end)

describe("SGD", function()
  local function ref(momentum, damp, wd, nesterov)
    local p, b = {}, {}
    for i, x in ipairs(P0) do p[i] = x end
    for t, g in ipairs(GRADS) do
      for i = 1, #p do
        local gi = g[i] + wd * p[i]
        local d = gi
        if momentum ~= 0 then
          b[i] = t == 1 and gi or momentum * b[i] + (1 - damp) * gi
          d = nesterov and gi + momentum * b[i] or b[i]
        end
        p[i] = p[i] - 0.1 * d
      end
    end
    return p
  end
  for _, c in ipairs {
    { 0, 0, 0, false }, { 0.9, 0, 0, false }, { 0.9, 0.1, 0.01, false }, { 0.8, 0, 0.05, true },
  } do
    it(("momentum %g dampening %g weight decay %g nesterov %s"):format(c[1], c[2], c[3], tostring(c[4])), function()
      local params, grads = f64(P0), f64(GRADS[1])
      local opt = optim.SGD({ params = params, grads = grads },
        { lr = 0.1, momentum = c[1], dampening = c[2], weight_decay = c[3], nesterov = c[4] })
      for _, g in ipairs(GRADS) do set(grads, g); opt:step() end
      H.close(params:totable(), ref(c[1], c[2], c[3], c[4]), 1e-12, 1e-14)
    end)
  end
  it("rejects nesterov without momentum", function()
    H.errors(function() optim.SGD({ params = f64(P0), grads = f64(P0) }, { nesterov = true }) end, "nesterov")
  end)
end)

describe("clipping and schedules", function()
  it("clip_grad_norm scales to max_norm and returns the norm before clipping", function()
    local g = GRADS[4]
    local grads = f64(g)
    local n = optim.clip_grad_norm({ params = f64(P0), grads = grads }, 1.0)
    H.close({ n:item() }, { norm(g) }, 1e-12)
    local c = 1.0 / (norm(g) + 1e-6)
    H.close(grads:totable(), H.map(function(x) return x * c end, g), 1e-12, 1e-15)
    -- below the threshold nothing changes
    local small = f64 { 0.1, 0.2 }
    optim.clip_grad_norm({ params = f64 { 0, 0 }, grads = small }, 1.0)
    H.close(small:totable(), { 0.1, 0.2 }, 0, 0)
    H.errors(function() optim.clip_grad_norm({ params = small, grads = small }, -1) end, "max_norm", "-1")
  end)

  it("constant, linear warm-up and cosine follow their formulas", function()
    assert.equal(0.3, optim.lr.constant(0.3)(17))
    local w = optim.lr.warmup(1.0, 4)
    H.close({ w(1), w(2), w(4), w(100) }, { 0.25, 0.5, 1, 1 }, 1e-15)
    local c = optim.lr.cosine(1.0, 10, { warmup = 2, min_lr = 0.1 })
    H.close({ c(1), c(2) }, { 0.5, 1.0 }, 1e-15)
    H.close({ c(6) }, { 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)) }, 1e-15)
    H.close({ c(10), c(20) }, { 0.1, 0.1 }, 1e-15)
    local opt = optim.AdamW({ params = f64(P0), grads = f64(P0) }, { lr = w })
    H.close({ opt:get_lr() }, { 0.25 }, 1e-15)
    opt:step()
    H.close({ opt.last_lr, opt:get_lr() }, { 0.25, 0.5 }, 1e-15)
  end)
end)

describe("EMA", function()
  it("shadow = d shadow + (1 - d) params over several updates, with warm-up", function()
    local net = mf.nn.MLP { sizes = { 2, 3, 1 }, generator = mf.Generator(3) }
    net:to("f64")
    local flat = net:flat_parameters()
    local ema = optim.EMA(net, { decay = 0.9, warmup = true })
    local s = flat:tolist()
    local g = mf.Generator(4)
    for n = 0, 3 do
      mf.no_grad(function() flat:add_(g:normal(flat:shape(), { dtype = "f64" })) end)
      ema:update()
      local d = math.min(0.9, (1 + n) / (10 + n))
      local p = flat:tolist()
      for i = 1, #s do s[i] = d * s[i] + (1 - d) * p[i] end
      H.close(ema.shadow:tolist(), s, 1e-12, 1e-14, "EMA update " .. n)
    end
    -- ema.network: the same structure, parameters viewing the shadow
    local x = mf.randn({ 4, 2 }, { dtype = "f64" })
    local copy = mf.nn.MLP { sizes = { 2, 3, 1 } }
    copy:to("f64")
    ema:copy_to(copy)
    H.close(ema.network(x):totable(), copy(x):totable(), 1e-12, 1e-14)
    for name, p in ema.network:named_parameters() do assert.equal(ema.shadow:storage(), p:storage(), name) end
    assert.is_false(ema.network.training)
    -- state dict round trip
    local other = optim.EMA(net, { decay = 0.9 })
    other:load_state_dict { shadow = ema.shadow:clone(), num_updates = 4 }
    H.close(other.shadow:tolist(), ema.shadow:tolist(), 0, 0)
    assert.equal(4, other.num_updates)
    H.errors(function() optim.EMA(net, { decay = 2 }) end, "moonflow.optim.EMA", "decay", "2")
  end)
end)
