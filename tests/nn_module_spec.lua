-- mf.nn: layers against Lua-double closed forms, the flat parameter buffer,
-- state dicts, train/eval, and the VelocityMLP network protocol.
local mf = require "moonflow"
local H = require "helpers"
local nn = mf.nn

-- y[i][o] = sum_k x[i][k] W[o][k] + b[o]
local function linear_ref(x, W, b)
  local y = {}
  for i = 1, #x do
    y[i] = {}
    for o = 1, #W do
      local s = b and b[o] or 0
      for k = 1, #x[i] do s = s + x[i][k] * W[o][k] end
      y[i][o] = s
    end
  end
  return y
end

local function ln_ref(x, w, b, eps)
  local y = {}
  for i = 1, #x do
    local n, mu, var = #x[i], 0, 0
    for _, v in ipairs(x[i]) do mu = mu + v / n end
    for _, v in ipairs(x[i]) do var = var + (v - mu) ^ 2 / n end
    y[i] = {}
    for k = 1, n do y[i][k] = (x[i][k] - mu) / math.sqrt(var + eps) * w[k] + b[k] end
  end
  return y
end

local function set(p, v) mf.no_grad(function() p:copy_(mf.tensor(v, { dtype = p:dtype() })) end) end

describe("nn layers", function()
  it("Linear computes x W^T + b and inits within +-1/sqrt(in)", function()
    local lin = nn.Linear(5, 3, { generator = mf.Generator(1) })
    local x = H.rand_table({ 4, 5 }, 3)
    local W, b = lin.weight:totable(), lin.bias:totable()
    H.close(lin(mf.tensor(x)):totable(), linear_ref(x, W, b), 1e-5, 1e-6)
    -- every value in [-k, k]; the variance of U(-k, k) is k^2/3
    local big = nn.Linear(400, 100, { generator = mf.Generator(2) })
    local k = 1 / math.sqrt(400)
    local w = big.weight:tolist()
    local s2 = 0
    for _, v in ipairs(w) do
      assert.is_true(math.abs(v) <= k)
      s2 = s2 + v * v
    end
    -- sd of v^2 for v ~ U(-k, k) is k^2 * 2/sqrt(45); 4 standard errors
    local se = k * k * (2 / math.sqrt(45)) / math.sqrt(#w)
    assert.is_true(math.abs(s2 / #w - k * k / 3) < 4 * se)
    local z = nn.Linear(5, 3, { zero_init = true })
    for _, v in ipairs(z.weight:tolist()) do assert.equal(0, v) end
    for _, v in ipairs(z.bias:tolist()) do assert.equal(0, v) end
    local x3 = H.rand_table({ 2, 2, 5 }, 4)
    local y3 = lin(mf.tensor(x3))
    assert.same({ 2, 2, 3 }, y3:shape())
    H.close(y3:totable()[2], linear_ref(x3[2], W, b), 1e-5, 1e-6)
    H.errors(function() lin(mf.zeros { 2, 4 }) end, "moonflow.nn.Linear", "4 features", "expected 5")
    H.errors(function() nn.Linear(0, 3) end, "in_features", "0")
  end)

  it("LayerNorm normalizes the last dim", function()
    local ln = nn.LayerNorm(6)
    local x = H.rand_table({ 3, 6 }, 5, -2, 3)
    local w, b = H.rand_table({ 6 }, 6), H.rand_table({ 6 }, 7)
    set(ln.weight, w); set(ln.bias, b)
    H.close(ln(mf.tensor(x)):totable(), ln_ref(x, w, b, 1e-5), 1e-4, 1e-5)
    H.errors(function() ln(mf.zeros { 2, 5 }) end, "moonflow.nn.LayerNorm", "expected 6")
    -- fused kernels name the mismatch
    H.errors(function() nn.F.layer_norm(mf.zeros({ 2, 6 }, { dtype = "f64" }), ln.weight, ln.bias) end,
      "moonflow.layer_norm", "weight is f32, expected f64")
    H.errors(function() nn.F.layer_norm(mf.zeros { 2, 6 }, mf.ones { 5 }) end, "moonflow.layer_norm", "5 elements")
    H.errors(function() nn.F.linear(mf.zeros { 2, 6 }, mf.zeros { 3, 6 }, mf.zeros { 4 }) end,
      "moonflow.linear", "bias", "4 elements")
    H.errors(function() nn.F.linear(mf.zeros { 2, 6 }, mf.zeros { 3, 6 }, nil, "swish") end, "moonflow.linear", "unknown activation swish")
  end)

  it("Embedding selects rows, with a null row", function()
    local e = nn.Embedding(3, 4, { null_row = true, generator = mf.Generator(3) })
    assert.same({ 4, 4 }, e.weight:shape())
    local W = e.weight:totable()
    local y = e(mf.tensor({ 3, 0, 2 }, { dtype = "i32" }))
    H.close(y:totable(), { W[4], W[1], W[3] })
    H.errors(function() e(mf.zeros { 3 }) end, "moonflow.nn.Embedding", "i32")
  end)

  it("TimestepEmbedding: sinusoidal features then an MLP", function()
    local te = nn.TimestepEmbedding(8, { freq_dim = 6, scale = 1000, generator = mf.Generator(4) })
    local t = { 0.1, 0.7 }
    local f = {}
    for i, tv in ipairs(t) do
      f[i] = {}
      for k = 0, 2 do
        local w = 1000 * math.exp(-math.log(10000) * k / 3)
        f[i][k + 1], f[i][k + 4] = math.cos(tv * w), math.sin(tv * w)
      end
    end
    H.close(nn.F.timestep_features(mf.tensor(t, { dtype = "f64" }), 6, 10000, 1000, "f64"):totable(), f, 1e-12, 1e-12)
    local h = linear_ref(f, te.linear1.weight:totable(), te.linear1.bias:totable())
    h = H.map(function(v) return v / (1 + math.exp(-v)) end, h)
    local want = linear_ref(h, te.linear2.weight:totable(), te.linear2.bias:totable())
    H.close(te(mf.tensor(t)):totable(), want, 1e-3, 1e-4)
  end)

  it("Sequential, MLP and activations compose", function()
    local g = mf.Generator(5)
    local mlp = nn.MLP { sizes = { 3, 7, 2 }, act = "relu", generator = g }
    local x = H.rand_table({ 4, 3 }, 8)
    local l1, l2 = mlp.layers[1], mlp.layers[3]
    local h = H.map(function(v) return math.max(v, 0) end, linear_ref(x, l1.weight:totable(), l1.bias:totable()))
    H.close(mlp(mf.tensor(x)):totable(), linear_ref(h, l2.weight:totable(), l2.bias:totable()), 1e-5, 1e-6)
    local names = {}
    for name in mlp:named_parameters() do names[#names + 1] = name end
    assert.same({ "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias" }, names)
    local s = nn.Sequential(nn.Linear(3, 2, { generator = g }), nn.Tanh())
    local y = s(mf.tensor(x)):totable()
    local lin = s[1]
    H.close(y, H.map(math.tanh, linear_ref(x, lin.weight:totable(), lin.bias:totable())), 1e-5, 1e-6)
    H.errors(function() nn.MLP { sizes = { 3 } } end, "moonflow.nn.MLP")
  end)

  it("Dropout drops with rate p in training and is the identity in eval", function()
    local d = nn.Dropout(0.25, { generator = mf.Generator(6) })
    local n = 20000
    local y = d(mf.ones { n }):tolist()
    local kept = 0
    for _, v in ipairs(y) do
      if v ~= 0 then kept = kept + 1; assert.near(1 / 0.75, v, 1e-6) end
    end
    -- binomial: sd sqrt(n p (1-p)); 5 standard deviations
    assert.is_true(math.abs(kept - 0.75 * n) < 5 * math.sqrt(n * 0.25 * 0.75))
    d:eval()
    assert.is_false(d.training)
    for _, v in ipairs(d(mf.ones { 10 }):tolist()) do assert.equal(1, v) end
    H.errors(function() nn.Dropout(1.5) end, "moonflow.nn.Dropout", "1.5")
  end)
end)

describe("flat parameter buffer", function()
  local net = nn.VelocityMLP { dim = 3, hidden = 16, depth = 3, num_classes = 4, use_dt = true, rngs = mf.Rngs(1) }

  it("holds every parameter as a view and every gradient in a second buffer", function()
    local flat, gflat = net:flat_parameters(), net:flat_gradients()
    local total = 0
    for name, p in net:named_parameters() do
      assert.equal(flat:storage(), p:storage(), name)
      assert.equal(gflat:storage(), p.grad:storage(), name)
      assert.equal(0, p:storage_offset() % 16, name)
      total = total + p:numel()
    end
    assert.equal(total, net:num_parameters())
    assert.is_true(flat:numel() >= total and flat:numel() < total + 16 * #net:parameters())
    -- writing through the flat buffer changes the parameter
    local w = net.blocks[2].linear.weight
    local off = w:storage_offset()
    mf.no_grad(function() flat:narrow(1, off + 1, 1):fill_(42) end)
    assert.equal(42, w:totable()[1][1])
  end)

  it("backward accumulates into the flat gradient buffer and zero_grad clears it", function()
    local x = mf.randn { 5, 3 }
    local loss = net(x, 0.5, { dt = 0.2 }):square():mean()
    net:zero_grad()
    loss:backward()
    local g1 = net.out_proj.bias.grad:totable()
    local gn = net:flat_gradients():norm():item()
    assert.is_true(gn > 0)
    -- a second identical backward doubles the gradient (accumulation)
    net(x, 0.5, { dt = 0.2 }):square():mean():backward()
    H.close(net.out_proj.bias.grad:totable(), H.map(function(v) return 2 * v end, g1), 1e-5, 1e-7)
    net:zero_grad()
    assert.equal(0, net:flat_gradients():norm():item())
  end)

  it("state_dict has dotted names; load_state_dict round-trips and checks first", function()
    local sd = net:state_dict()
    assert.same({ 16, 16 }, sd["blocks.2.linear.weight"]:shape())
    assert.is_not_nil(sd["y_embed.weight"])
    assert.is_not_nil(sd["dt_embed.linear1.bias"])
    assert.same({ 5, 16 }, sd["y_embed.weight"]:shape()) -- 4 classes + the null row
    local other = nn.VelocityMLP { dim = 3, hidden = 16, depth = 3, num_classes = 4, use_dt = true, rngs = mf.Rngs(2) }
    local copy = {}
    for k, v in pairs(sd) do copy[k] = v:clone() end
    other:load_state_dict(copy)
    local x = mf.randn { 4, 3 }
    H.close(other(x, 0.3):totable(), net(x, 0.3):totable(), 1e-6, 1e-7)
    -- a bad shape fails before anything is copied
    local before = other:flat_parameters():clone():tolist()
    copy["final_norm.bias"] = mf.zeros { 7 }
    copy["in_proj.weight"] = mf.zeros { 16, 3 }
    H.errors(function() other:load_state_dict(copy) end, "final_norm.bias", "{7}", "{16}")
    H.close(other:flat_parameters():tolist(), before, 0, 0)
    copy["final_norm.bias"] = nil
    H.errors(function() other:load_state_dict(copy) end, "missing final_norm.bias")
    copy["final_norm.bias"] = mf.zeros { 16 }
    copy["extra.weight"] = mf.zeros { 1 }
    H.errors(function() other:load_state_dict(copy) end, "unexpected extra.weight")
    other:load_state_dict(copy, { strict = false })
    assert.equal(0, other.in_proj.weight:abs():sum():item())
  end)

  it("train() and eval() reach every submodule", function()
    net:eval()
    for _, e in ipairs(net:named_modules()) do assert.is_false(e[2].training, e[1]) end
    net:train()
    for _, e in ipairs(net:named_modules()) do assert.is_true(e[2].training, e[1]) end
  end)

  it("converts to f64 with the same values", function()
    local m = nn.VelocityMLP { dim = 2, hidden = 8, depth = 1, rngs = mf.Rngs(3) }
    local x = mf.randn { 3, 2 }
    local y32 = m(x, 0.4):totable()
    m:to("f64")
    assert.equal("f64", m:flat_parameters():dtype())
    assert.equal("f64", m.blocks[1].linear.weight:dtype())
    H.close(m(x:to("f64"), 0.4):totable(), y32, 1e-4, 1e-5)
    -- or built in f64 from the start
    local d = nn.VelocityMLP { dim = 2, hidden = 8, depth = 1, num_classes = 2, use_dt = true, dtype = "f64" }
    assert.equal("f64", d:flat_parameters():dtype())
    assert.equal("f64", d(x, 0.4, { dt = 0.1 }):dtype())
  end)
end)

describe("VelocityMLP protocol", function()
  local net = nn.VelocityMLP { dim = 2, hidden = 16, depth = 3, num_classes = 5, use_dt = true, rngs = mf.Rngs(4) }
  local x = mf.randn { 6, 2 }

  it("returns out {B, dim} and features by depth, declares hidden_size and num_classes", function()
    local out, feats = net(x, mf.full({ 6 }, 0.3), { y = mf.tensor({ 0, 1, 2, 3, 4, 5 }, { dtype = "i32" }), dt = mf.full({ 6 }, 0.1) })
    assert.same({ 6, 2 }, out:shape())
    assert.equal(3, #feats)
    for k = 1, 3 do assert.same({ 6, 16 }, feats[k]:shape()) end
    assert.equal(16, net.hidden_size)
    assert.equal(5, net.num_classes)
  end)

  it("takes t as a number or a {B} tensor, and a missing y as the null label", function()
    local a = net(x, 0.3, { dt = 0.1 }):totable()
    local b = net(x, mf.full({ 6 }, 0.3), { y = mf.full({ 6 }, 5, { dtype = "i32" }), dt = mf.full({ 6 }, 0.1) }):totable()
    H.close(a, b, 1e-6, 1e-7)
    -- the label changes the output; so do dt and t
    local c = net(x, 0.3, { y = mf.zeros({ 6 }, { dtype = "i32" }), dt = 0.1 }):totable()
    assert.is_true(math.abs(c[1][1] - a[1][1]) > 1e-6)
    local d = net(x, 0.3, { dt = 0.2 }):totable()
    assert.is_true(math.abs(d[1][1] - a[1][1]) > 1e-6)
  end)

  it("checks its inputs", function()
    H.errors(function() net(mf.zeros { 6, 3 }, 0.3) end, "moonflow.nn.VelocityMLP", "{6, 3}", "{B, 2}")
    H.errors(function() net(x, mf.zeros { 5 }) end, "moonflow.nn.VelocityMLP", "t", "{5}", "{6}")
    H.errors(function() net(x, 0.3, { y = mf.zeros { 6 } }) end, "cond.y", "i32")
    H.errors(function() nn.VelocityMLP { dim = 0 } end, "dim", "0")
    local plain = nn.VelocityMLP { dim = 2, hidden = 8, depth = 1 }
    H.errors(function() plain(x, 0.3, { y = mf.zeros({ 6 }, { dtype = "i32" }) }) end, "num_classes")
  end)
end)
