-- Model, optimizer and EMA state survive mf.io.save / mf.io.load: training
-- resumed from a checkpoint matches training that never stopped.
local mf = require "moonflow"
local H = require "helpers"

local function setup()
  local net = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 2, num_classes = 3, rngs = mf.Rngs(5) }
  local opt = mf.optim.AdamW(net, { lr = 1e-2, max_grad_norm = 1 })
  local ema = mf.optim.EMA(net, { decay = 0.9 })
  return net, opt, ema
end

local g = mf.Generator(8)
local X, T = g:normal { 32, 2 }, g:uniform { 32 }
local function step(net, opt, ema)
  local loss = (net(X, T) - X):square():mean()
  opt:zero_grad(); loss:backward(); opt:step(); ema:update()
end

describe("checkpoints", function()
  it("resume exactly after save and load", function()
    local base = os.tmpname()
    os.remove(base)
    local path = base .. ".safetensors"
    local net, opt, ema = setup()
    for _ = 1, 3 do step(net, opt, ema) end
    mf.io.save(path, { model = net, optim = opt, ema = ema, step = 3 })
    for _ = 1, 2 do step(net, opt, ema) end
    local n2, o2, e2 = setup()
    local ck = mf.io.load(path, { model = n2, optim = o2, ema = e2 })
    assert.equal(3, math.tointeger(ck.step))
    assert.equal(3, o2.step_count)
    assert.equal(3, e2.num_updates)
    for _ = 1, 2 do step(n2, o2, e2) end
    H.close(n2:flat_parameters():tolist(), net:flat_parameters():tolist(), 1e-6, 1e-7)
    H.close(e2.shadow:tolist(), ema.shadow:tolist(), 1e-6, 1e-7)
    -- a model of another shape is refused before anything changes
    local other = mf.nn.VelocityMLP { dim = 2, hidden = 8, depth = 2, num_classes = 3 }
    local before = other:flat_parameters():tolist()
    H.errors(function() mf.io.load(path, { model = other }) end, "model", "shape")
    H.close(other:flat_parameters():tolist(), before, 0, 0)
    os.remove(path)
  end)
end)
