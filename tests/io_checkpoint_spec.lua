local mf = require "moonflow"
local H = require "helpers"

local dir = H.tmpdir()

-- a small training setup: network, optimizer, EMA, data, all from one seed
local function setup(seed, hidden)
  local rngs = mf.Rngs(seed)
  local net = mf.nn.VelocityMLP { dim = 2, hidden = hidden or 16, depth = 2, rngs = rngs }
  local opt = mf.optim.AdamW(net, { lr = 1e-2 })
  local ema = mf.optim.EMA(net, { decay = 0.9 })
  local data = mf.data.toy("two_moons", { rngs = rngs })
  return { rngs = rngs, net = net, opt = opt, ema = ema, data = data }
end

-- k steps of a regression of the network output on x; returns the losses
local function train(s, k)
  local losses = {}
  for i = 1, k do
    local x = s.data:batch(32)
    local t = s.rngs.time:uniform({ 32 })
    local out = s.net(x, t)
    local loss = ((out - x) * (out - x)):mean()
    s.opt:zero_grad()
    loss:backward()
    s.opt:step()
    s.ema:update()
    losses[i] = loss:item()
  end
  return losses
end

local function flat(net) return net:flat_parameters():tolist() end

describe("io.save / io.load checkpoints", function()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)
  local path = dir .. "/ck.safetensors"

  it("restores model, EMA, optimizer, step and RNG streams exactly, so training continues identically", function()
    local a = setup(1)
    train(a, 3)
    mf.io.save(path, { model = a.net, ema = a.ema, optim = a.opt, step = 3, rngs = a.rngs,
      config = { lr = 1e-2, data = { name = "two_moons" } }, note = "return { seed = 1 }" })
    local b = setup(2) -- different weights, different streams
    assert.are_not.same(flat(a.net), flat(b.net))
    local ck = mf.io.load(path, { model = b.net, ema = b.ema, optim = b.opt, rngs = b.rngs })
    assert.are.equal(3, ck.step)
    assert.are.equal(1e-2, ck.config.lr)
    assert.are.equal("two_moons", ck.config.data.name)
    assert.are.equal("return { seed = 1 }", ck.note)
    assert.are.same(flat(a.net), flat(b.net))
    assert.are.same(a.ema.shadow:tolist(), b.ema.shadow:tolist())
    assert.are.same(a.opt.m:tolist(), b.opt.m:tolist())
    assert.are.same(a.opt.v:tolist(), b.opt.v:tolist())
    assert.are.equal(a.opt.step_count, b.opt.step_count)
    assert.are.equal(a.ema.num_updates, b.ema.num_updates)
    assert.are.same(a.rngs.data:get_state(), b.rngs.data:get_state())
    -- the continuation is bit-identical
    assert.are.same(train(a, 3), train(b, 3))
    assert.are.same(flat(a.net), flat(b.net))
  end)

  it("loads without targets as plain tables and writes a standard safetensors file", function()
    local ck = mf.io.load(path)
    assert.are.equal(3, ck.step)
    assert.is_true(mf.is_tensor(ck.optim.exp_avg))
    assert.is_true(mf.is_tensor(ck.ema["in_proj.weight"]))
    local tensors, meta = mf.io.load_safetensors(path)
    assert.are.equal("moonflow.checkpoint/2", meta["moonflow.format"])
    assert.are.equal("3", meta.step)
    assert.is_not_nil(meta.rngs:find('"data"', 1, true))
    local n = 0
    for name, t in pairs(tensors) do
      n = n + 1
      assert.is_not_nil(name:match("^model%.") or name:match("^ema%.") or name:match("^optim%."), name)
      assert.is_true(mf.is_tensor(t))
    end
    local params = 0
    for _ in pairs(setup(1).net:state_dict()) do params = params + 1 end
    assert.are.equal(2 * params + 2, n) -- each parameter twice (model, EMA), the two Adam moments
  end)

  it("checks every target before changing any: a mismatch leaves all of them as they were", function()
    local s = setup(3)
    local wrong = setup(3, 24) -- hidden 24: shapes differ from the file
    local before = { net = flat(s.net), opt = s.opt.m:tolist(), rng = s.rngs.data:get_state() }
    local err = H.errors(function()
      mf.io.load(path, { model = s.net, optim = s.opt, rngs = s.rngs, ema = wrong.ema })
    end, "moonflow.io.load", path, 'entry "ema" does not match its target',
      "ema.in_proj.weight has shape {16, 2} in the file but {24, 2} in the target")
    assert.is_nil(err:find("model", 1, true))
    assert.are.same(before.net, flat(s.net))
    assert.are.same(before.opt, s.opt.m:tolist())
    assert.are.same(before.rng, s.rngs.data:get_state())
    H.errors(function() mf.io.load(path, { model = wrong.net }) end, "moonflow.io.load",
      'entry "model" does not match its target', "has shape {", "in the file but {")
    H.errors(function() mf.io.load(path, { teacher = s.net }) end, "moonflow.io.load", 'no entry "teacher"')
    H.errors(function() mf.io.load(path, { step = s.net }) end, "moonflow.io.load", 'entry "step" is not a state dict')
    H.errors(function() mf.io.load(path, { model = 3 }) end, "moonflow.io.load", "neither load_state_dict nor set_state")
  end)

  it("names missing and unexpected parameters", function()
    local s = setup(4)
    local tensors, meta = mf.io.load_safetensors(path)
    local victim
    for name in pairs(tensors) do if name:match("^model%.") then victim = name break end end
    tensors[victim] = nil
    tensors["model.extra.weight"] = mf.zeros({ 2 })
    local J = require "moonflow.json"
    local tree = J.decode(meta.model)
    tree.__state__[victim:sub(7)] = nil
    tree.__state__["extra.weight"] = { __tensor__ = "model.extra.weight" }
    meta.model = J.encode(tree)
    local p2 = dir .. "/edited.safetensors"
    mf.io.save_safetensors(p2, tensors, meta)
    H.errors(function() mf.io.load(p2, { model = s.net }) end, "moonflow.io.load", victim .. " is missing",
      "model.extra.weight is in the file but not in the target")
  end)

  it("rejects files that are not moonflow checkpoints or whose entries are corrupt", function()
    local p2 = dir .. "/plain.safetensors"
    mf.io.save_safetensors(p2, { w = mf.zeros({ 2 }) })
    H.errors(function() mf.io.load(p2) end, "moonflow.io.load", p2, "not a moonflow checkpoint")
    mf.io.save_safetensors(p2, { w = mf.zeros({ 2 }) }, { ["moonflow.format"] = "moonflow.checkpoint/1", step = "{" })
    H.errors(function() mf.io.load(p2) end, "moonflow.io.load", 'entry "step"', "invalid JSON")
    mf.io.save_safetensors(p2, { w = mf.zeros({ 2 }) }, { ["moonflow.format"] = "moonflow.checkpoint/1", step = "3" })
    H.errors(function() mf.io.load(p2) end, "moonflow.io.load", 'tensor "w" belongs to no entry')
    mf.io.save_safetensors(p2, {}, { ["moonflow.format"] = "moonflow.checkpoint/1", model = '{"__state__":{"w":{"__tensor__":"model.w"}}}' })
    H.errors(function() mf.io.load(p2) end, "moonflow.io.load", 'refers to tensor "model.w"')
  end)

  it("refuses to save what it cannot store, keeping the previous checkpoint", function()
    local f = assert(io.open(path, "rb"))
    local before = f:read("a")
    f:close()
    H.errors(function() mf.io.save(path, { [1] = 3 }) end, "moonflow.io.save", "not a usable name")
    local cyclic = {}
    cyclic.self = cyclic
    H.errors(function() mf.io.save(path, { config = cyclic }) end, "moonflow.io.save", 'entry "config"', "cycle")
    f = assert(io.open(path, "rb"))
    assert.are.equal(before, f:read("a"))
    f:close()
  end)
end)
