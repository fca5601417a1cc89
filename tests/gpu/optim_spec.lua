-- cl/optim.cl on oclgrind: AdamW (decoupled decay, bias correction, clipping by the
-- global norm), SGD with momentum and nesterov, EMA, over 2100 parameters (more than
-- the grid), against textbook updates in Lua doubles.
local mf = require "moonflow"
local H = require "helpers"
local optim = mf.optim

local N = 2100
local function f64(t) return mf.tensor(t, { dtype = "f64" }) end
local function set(dst, vals) mf.no_grad(function() dst:copy_(f64(vals)) end) end
local function vec(seed) return H.flatten(H.rand_table({ N }, seed)) end
local function norm(g) local s = 0; for _, v in ipairs(g) do s = s + v * v end; return math.sqrt(s) end

describe("optimizers on the GPU shapes", function()
  it("AdamW with clipping: two steps of the textbook update", function()
    local p0, grads = vec(1), { vec(2), vec(3) }
    local params, g = f64(p0), f64(grads[1])
    local opt = optim.AdamW({ params = params, grads = g },
      { lr = 0.05, betas = { 0.8, 0.95 }, eps = 1e-6, weight_decay = 0.1, max_grad_norm = 1.5 })
    local p, m, v = {}, {}, {}
    for i = 1, N do p[i], m[i], v[i] = p0[i], 0, 0 end
    for t, gr in ipairs(grads) do
      set(g, gr)
      opt:step()
      local c = math.min(1, 1.5 / (norm(gr) + 1e-6))
      for i = 1, N do
        local gi = c * gr[i]
        p[i] = p[i] - 0.05 * 0.1 * p[i]
        m[i] = 0.8 * m[i] + 0.2 * gi
        v[i] = 0.95 * v[i] + 0.05 * gi * gi
        p[i] = p[i] - 0.05 * (m[i] / (1 - 0.8 ^ t)) / (math.sqrt(v[i] / (1 - 0.95 ^ t)) + 1e-6)
      end
      H.close(params:totable(), p, 1e-11, 1e-13, "AdamW step " .. t)
    end
  end)

  it("SGD with momentum, dampening, weight decay and nesterov", function()
    local p0, grads = vec(4), { vec(5), vec(6), vec(7) }
    local params, g = f64(p0), f64(grads[1])
    local opt = optim.SGD({ params = params, grads = g },
      { lr = 0.1, momentum = 0.8, dampening = 0.1, weight_decay = 0.05, nesterov = false })
    local p, b = {}, {}
    for i = 1, N do p[i] = p0[i] end
    for t, gr in ipairs(grads) do
      set(g, gr)
      opt:step()
      for i = 1, N do
        local gi = gr[i] + 0.05 * p[i]
        b[i] = t == 1 and gi or 0.8 * b[i] + 0.9 * gi
        p[i] = p[i] - 0.1 * b[i]
      end
    end
    H.close(params:totable(), p, 1e-12, 1e-14)
  end)

  it("EMA: shadow = d shadow + (1 - d) params with warm-up", function()
    local net = mf.nn.MLP { sizes = { 2, 40, 40, 1 }, generator = mf.Generator(3) }
    net:to("f64")
    local flat = net:flat_parameters()
    local ema = optim.EMA(net, { decay = 0.9, warmup = true })
    local s = flat:tolist()
    local g = mf.Generator(4)
    for n = 0, 2 do
      mf.no_grad(function() flat:add_(g:normal(flat:shape(), { dtype = "f64" })) end)
      ema:update()
      local d = math.min(0.9, (1 + n) / (10 + n))
      local p = flat:tolist()
      for i = 1, #s do s[i] = d * s[i] + (1 - d) * p[i] end
      H.close(ema.shadow:tolist(), s, 1e-12, 1e-14, "EMA update " .. n)
    end
  end)
end)

describe("optimizers in f32 and clip_grad_norm", function()
  it("AdamW, SGD and EMA steps in f32 agree with the doubles to float precision", function()
    local p0, gr = vec(8), vec(9)
    local params, g = mf.tensor(p0), mf.tensor(gr)
    optim.AdamW({ params = params, grads = g }, { lr = 0.01, weight_decay = 0 }):step()
    -- first AdamW step: m^ = g, v^ = g^2, so p - lr g / (|g| + eps)
    H.close(params:totable(), H.map(function(p, q) return p - 0.01 * q / (math.abs(q) + 1e-8) end, p0, gr), 1e-6, 1e-6)
    local sp = mf.tensor(p0)
    optim.SGD({ params = sp, grads = mf.tensor(gr) }, { lr = 0.1 }):step()
    H.close(sp:totable(), H.map(function(p, q) return p - 0.1 * q end, p0, gr), 1e-6, 1e-6)
    local net = mf.nn.MLP { sizes = { 2, 30, 1 }, generator = mf.Generator(3) }
    local flat = net:flat_parameters()
    local ema = optim.EMA(net, { decay = 0.5 })
    local s = flat:tolist()
    mf.no_grad(function() flat:mul_(2) end)
    ema:update()
    H.close(ema.shadow:tolist(), H.map(function(v) return 1.5 * v end, s), 1e-6, 1e-7)
  end)

  for _, dt in ipairs { "f32", "f64" } do
    it("clip_grad_norm scales the gradients to max_norm, " .. dt, function()
      local p0, gr = vec(10), vec(11)
      local g = mf.tensor(gr, { dtype = dt })
      local n = optim.clip_grad_norm({ params = mf.tensor(p0, { dtype = dt }), grads = g }, 2)
      H.close({ n:item() }, { norm(gr) }, 1e-6, 1e-6)
      H.close(g:totable(), H.map(function(v) return v * 2 / (norm(gr) + 1e-6) end, gr), 1e-5, 1e-6)
    end)
  end
end)
