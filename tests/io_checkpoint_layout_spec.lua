-- The checkpoint layout PyTorch users read: model.<name> and ema.<name>
-- tensors under PyTorch's names with the model's shapes, the optimizer's
-- flat state beside them, JSON metadata; and format-1 files (1-based names,
-- a flat EMA shadow) still load.
local mf = require "moonflow"
local J = require "moonflow.json"
local H = require "helpers"

local dir = H.tmpdir()
teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

local function setup(seed)
  local rngs = mf.Rngs(seed)
  local net = mf.nn.VelocityMLP { dim = 2, hidden = 8, depth = 2, num_classes = 3, rngs = rngs }
  local opt = mf.optim.AdamW(net, { lr = 1e-2 })
  local ema = mf.optim.EMA(net, { decay = 0.5 })
  return { net = net, opt = opt, ema = ema, rngs = rngs }
end

local function train(s, k)
  local g = mf.Generator(3)
  for _ = 1, k do
    local x = g:normal({ 16, 2 })
    local loss = (s.net(x, g:uniform({ 16 })) - x):square():mean()
    s.opt:zero_grad(); loss:backward(); s.opt:step(); s.ema:update()
  end
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

describe("checkpoint layout", function()
  local path = dir .. "/ck.safetensors"
  local a = setup(1)
  train(a, 3)

  it("holds model.<name> and ema.<name> with the model's shapes beside the flat optimizer state", function()
    mf.io.save(path, { model = a.net, ema = a.ema, optim = a.opt, step = 3, config = { seed = 1, data = { name = "x" } } })
    local tensors, meta = mf.io.load_safetensors(path)
    local want = {}
    for name, p in a.net:named_parameters() do
      want[#want + 1] = "model." .. name
      want[#want + 1] = "ema." .. name
      assert.are.same(p:shape(), tensors["model." .. name]:shape(), name)
      assert.are.same(p:shape(), tensors["ema." .. name]:shape(), name)
    end
    want[#want + 1] = "optim.exp_avg"
    want[#want + 1] = "optim.exp_avg_sq"
    table.sort(want)
    assert.are.same(want, sorted_keys(tensors))
    assert.is_not_nil(tensors["ema.blocks.0.linear.weight"])
    assert.is_nil(tensors["ema.blocks.2.linear.weight"])
    -- the EMA tensors are the averaged weights, the model's the live ones
    for name, p in a.ema.network:named_parameters() do
      assert.are.equal(mf.core.tobytes(p), mf.core.tobytes(tensors["ema." .. name]), name)
    end
    for name, p in a.net:named_parameters() do
      assert.are.equal(mf.core.tobytes(p), mf.core.tobytes(tensors["model." .. name]), name)
    end
    assert.are.same({ numel = a.net:flat_parameters():numel() }, { numel = tensors["optim.exp_avg"]:numel() })
    -- metadata: the format and one JSON value per entry
    assert.are.same({ "config", "ema", "model", "moonflow.format", "optim", "step" }, sorted_keys(meta))
    assert.are.equal("moonflow.checkpoint/2", meta["moonflow.format"])
    assert.are.same({ seed = 1, data = { name = "x" } }, J.decode(meta.config))
    local e = J.decode(meta.ema).__state__
    assert.are.equal(3, e.num_updates)
    assert.are.equal(0.5, e.decay)
    assert.are.same({ __tensor__ = "ema.blocks.1.norm.bias" }, e["blocks.1.norm.bias"])
  end)

  it("loads back into an EMA, by name, and without targets as a plain state dict", function()
    local b = setup(2)
    mf.io.load(path, { model = b.net, ema = b.ema, optim = b.opt })
    assert.are.equal(mf.core.tobytes(a.ema.shadow), mf.core.tobytes(b.ema.shadow))
    assert.are.equal(3, b.ema.num_updates)
    local ck = mf.io.load(path)
    local c = setup(3)
    c.ema:load_state_dict(ck.ema)
    assert.are.equal(mf.core.tobytes(a.ema.shadow), mf.core.tobytes(c.ema.shadow))
    -- a net loads the EMA weights as they are
    c.net:load_state_dict((function()
      local sd = {}
      for k, v in pairs(ck.ema) do if mf.is_tensor(v) then sd[k] = v end end
      return sd
    end)())
    assert.are.equal(mf.core.tobytes(a.ema.shadow), mf.core.tobytes(c.net:flat_parameters()))
    H.errors(function() c.ema:load_state_dict { num_updates = 1, ["in_proj.weight"] = mf.zeros({ 8, 2 }) } end,
      "moonflow.optim.EMA.load_state_dict", "missing", "out_proj.weight")
  end)

  it("reads format-1 checkpoints: 1-based names and a flat EMA shadow", function()
    -- the file moonflow wrote before: the same state under its old names
    local tensors, meta = mf.io.load_safetensors(path)
    local function old(name) -- blocks.0.x -> blocks.1.x
      return (name:gsub("%.(%d+)%.", function(d) return "." .. (tonumber(d) + 1) .. "." end))
    end
    local t1, model = {}, {}
    for k, v in pairs(tensors) do
      local name = k:match("^model%.(.*)$")
      if name then
        t1["model." .. old(name)] = v
        model[old(name)] = { __tensor__ = "model." .. old(name) }
      elseif k:match("^optim%.") then
        t1[k] = v
      end
    end
    t1["ema.shadow"] = a.ema.shadow
    assert.is_not_nil(t1["model.blocks.2.linear.weight"])
    local m1 = {
      ["moonflow.format"] = "moonflow.checkpoint/1", step = meta.step, optim = meta.optim, config = meta.config,
      model = J.encode({ __state__ = model }),
      ema = J.encode({ __state__ = { shadow = { __tensor__ = "ema.shadow" }, num_updates = 3, decay = 0.5 } }),
    }
    local p1 = mf.io.save_safetensors(dir .. "/old.safetensors", t1, m1)
    local b = setup(4)
    mf.io.load(p1, { model = b.net, ema = b.ema, optim = b.opt })
    assert.are.equal(mf.core.tobytes(a.net:flat_parameters()), mf.core.tobytes(b.net:flat_parameters()))
    assert.are.equal(mf.core.tobytes(a.ema.shadow), mf.core.tobytes(b.ema.shadow))
    assert.are.equal(mf.core.tobytes(a.opt.m), mf.core.tobytes(b.opt.m))
    -- as `moonflow sample` reads it: no targets, then the EMA's own load
    local ck = mf.io.load(p1)
    assert.is_not_nil(ck.model["blocks.1.linear.weight"])
    assert.is_nil(ck.model["blocks.2.linear.weight"])
    local c = setup(5)
    c.ema:load_state_dict(ck.ema)
    assert.are.equal(mf.core.tobytes(a.ema.shadow), mf.core.tobytes(c.ema.shadow))
    -- a format-1 shadow of another size is refused, naming it
    local d = mf.optim.EMA(mf.nn.VelocityMLP { dim = 2, hidden = 4, depth = 1 })
    H.errors(function() mf.io.load(p1, { ema = d }) end, "moonflow.io.load", p1, 'entry "ema"', "shadow has")
  end)
end)
