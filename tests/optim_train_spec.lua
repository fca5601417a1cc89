-- Learning works, and a training step reads nothing back from the device.
local mf = require "moonflow"
local nn, optim = mf.nn, mf.optim

describe("training", function()
  it("a small MLP fits y = sin(3x) on [-1, 1] to MSE below 1e-4", function()
    local g = mf.Generator(0)
    local net = nn.MLP { sizes = { 1, 64, 64, 1 }, act = "silu", generator = g }
    local opt = optim.AdamW(net, { lr = optim.lr.cosine(1e-2, 600, { warmup = 20, min_lr = 1e-4 }), weight_decay = 0 })
    local x = mf.linspace(-1, 1, 256):reshape { 256, 1 }
    local y = (x * 3):sin()
    local first
    for step = 1, 600 do
      local loss = (net(x) - y):square():mean()
      if step == 1 then first = loss:item() end
      opt:zero_grad()
      loss:backward()
      opt:step()
    end
    local final = mf.no_grad(function() return (net(x) - y):square():mean():item() end)
    -- the variance of sin(3x) on [-1, 1] is about 0.36: a constant fit scores that
    assert.is_true(first > 0.05, "initial loss " .. first)
    assert.is_true(final < 1e-4, "final loss " .. final)
  end)

  it("a SiT training step of a VelocityMLP reads nothing back until loss:item()", function()
    local rngs = mf.Rngs(1)
    local net = nn.VelocityMLP { dim = 2, hidden = 32, depth = 2, num_classes = 3, rngs = rngs }
    local opt = optim.AdamW(net, { lr = 1e-3, max_grad_norm = 1.0 })
    local ema = optim.EMA(net, { decay = 0.99 })
    local data = rngs.noise:normal { 64, 2 }
    local y = rngs.noise:randint({ 64 }, 0, 3)
    local function step()
      -- x_t = (1 - t) x + t n, target n - x, loss = mean((net(x_t, t, y) - target)^2)
      local n = rngs.noise:normal { 64, 2 }
      local t = rngs.time:uniform { 64 }
      local tc = t:reshape { 64, 1 }
      local xt = data * (1 - tc) + n * tc
      local loss = (net(xt, t, { y = y }) - (n - data)):square():mean()
      opt:zero_grad()
      loss:backward()
      opt:step()
      ema:update()
      return loss
    end
    step() -- first step builds kernels and caches
    mf.synchronize()
    mf.reset_stats()
    local loss
    for _ = 1, 3 do loss = step() end
    local s = mf.stats()
    assert.equal(0, s.reads)
    assert.equal(0, s.read_bytes)
    assert.is_true(s.launches > 0)
    local v = loss:item()
    assert.is_true(v == v and v > 0)
    assert.equal(1, mf.stats().reads)
  end)
end)
