-- nn.ViT (the encoder / classifier over images) and F.cross_entropy:
-- shapes and names, the pooled features as the head's input, the final
-- LayerNorm's statistics, a float64 gradient check of a tiny ViT (three
-- entries of every parameter tensor and the input, central differences),
-- and cross_entropy against its closed form in Lua doubles with its
-- gradient (softmax - onehot) / B.
local mf = require "moonflow"
local H = require "helpers"
local G = require "autograd_check"
local nn = mf.nn

local fp64 = mf.device().fp64

local function tiny(dt, seed)
  return nn.ViT { input_size = 4, patch_size = 2, in_channels = 2, hidden_size = 8, depth = 2, num_heads = 2,
    mlp_ratio = 2, num_classes = 3, dtype = dt, rngs = mf.Rngs(seed) }
end

local function set_flat(flat, vals)
  mf.no_grad(function() flat:copy_(mf.tensor(vals, { dtype = flat:dtype() })) end)
end

describe("nn.ViT", function()
  it("maps images to logits, tokens and pooled features of the documented shapes", function()
    local vit = nn.ViT { input_size = 28, patch_size = 4, in_channels = 1, hidden_size = 32, depth = 2, num_heads = 4,
      num_classes = 10, rngs = mf.Rngs(1) }
    assert.equal(49, vit.num_tokens)
    assert.equal(32, vit.hidden_size)
    local x = mf.Generator(2):normal({ 3, 1, 28, 28 })
    local logits, tokens = vit(x)
    assert.same({ 3, 10 }, logits:shape())
    assert.same({ 3, 49, 32 }, tokens:shape())
    local f = vit:features(x)
    assert.same({ 3, 32 }, f:shape())
    -- the pooled features are the mean of the tokens, and the head reads them
    local t = tokens:totable()
    local want = {}
    for b = 1, 3 do
      want[b] = {}
      for k = 1, 32 do
        local s = 0
        for n = 1, 49 do s = s + t[b][n][k] end
        want[b][k] = s / 49
      end
    end
    H.close(f:totable(), want, 1e-5, 1e-6, "pooled")
    local W, bias = vit.head.weight:totable(), vit.head.bias:totable()
    local lg = {}
    for b = 1, 3 do
      lg[b] = {}
      for c = 1, 10 do
        local s = bias[c]
        for k = 1, 32 do s = s + W[c][k] * want[b][k] end
        lg[b][c] = s
      end
    end
    H.close(logits:totable(), lg, 1e-4, 1e-5, "logits")
    -- the final LayerNorm (weight 1, bias 0 at init): every token has mean 0, variance 1 - eps-ish
    for n = 1, 49, 12 do
      local m, v = 0, 0
      for k = 1, 32 do m = m + t[2][n][k] end
      m = m / 32
      for k = 1, 32 do v = v + (t[2][n][k] - m) ^ 2 end
      assert.is_true(math.abs(m) < 1e-5 and math.abs(v / 32 - 1) < 1e-3, ("token %d: mean %g var %g"):format(n, m, v / 32))
    end
  end)

  it("names its parameters as timm's ViT and records its config", function()
    local vit = tiny("f32", 3)
    local names = {}
    for name, p in vit:named_parameters() do names[#names + 1] = name .. " " .. table.concat(p:shape(), "x") end
    assert.same({ "patch_embed.proj.weight 8x8", "patch_embed.proj.bias 8",
      "blocks.0.norm1.weight 8", "blocks.0.norm1.bias 8", "blocks.0.attn.qkv.weight 24x8", "blocks.0.attn.qkv.bias 24",
      "blocks.0.attn.proj.weight 8x8", "blocks.0.attn.proj.bias 8", "blocks.0.norm2.weight 8", "blocks.0.norm2.bias 8",
      "blocks.0.mlp.fc1.weight 16x8", "blocks.0.mlp.fc1.bias 16", "blocks.0.mlp.fc2.weight 8x16", "blocks.0.mlp.fc2.bias 8",
      "blocks.1.norm1.weight 8", "blocks.1.norm1.bias 8", "blocks.1.attn.qkv.weight 24x8", "blocks.1.attn.qkv.bias 24",
      "blocks.1.attn.proj.weight 8x8", "blocks.1.attn.proj.bias 8", "blocks.1.norm2.weight 8", "blocks.1.norm2.bias 8",
      "blocks.1.mlp.fc1.weight 16x8", "blocks.1.mlp.fc1.bias 16", "blocks.1.mlp.fc2.weight 8x16", "blocks.1.mlp.fc2.bias 8",
      "norm.weight 8", "norm.bias 8", "head.weight 3x8", "head.bias 3" }, names)
    assert.same({ input_size = 4, patch_size = 2, in_channels = 2, hidden_size = 8, depth = 2, num_heads = 2,
      mlp_ratio = 2, num_classes = 3 }, vit:config())
    H.errors(function() vit(mf.zeros({ 2, 1, 4, 4 })) end, "moonflow.nn.ViT", "{2, 1, 4, 4}", "{B, 2, 4, 4}")
    H.errors(function() nn.ViT { input_size = 6, patch_size = 4, in_channels = 1, hidden_size = 8, depth = 1,
      num_heads = 2, num_classes = 2 } end, "moonflow.nn.ViT", "input_size 6 is not divisible by patch_size 4")
    H.errors(function() nn.ViT { input_size = 4, patch_size = 2, in_channels = 1, hidden_size = 8, depth = 1,
      num_heads = 2 } end, "moonflow.nn.ViT", "num_classes must be a positive integer, got nil")
  end)

  it("the gradient of every parameter tensor matches central differences (f64)", function()
    if not fp64 then pending("no f64 on this device") return end
    local vit = tiny("f64", 7)
    local flat = vit:flat_parameters()
    -- every parameter away from its init (LayerNorm weights 1, biases 0)
    set_flat(flat, H.flatten(H.rand_table({ flat:shape()[1] }, 8, -0.6, 0.6)))
    local x = mf.tensor(H.rand_table({ 2, 2, 4, 4 }, 9), "f64")
    local wl = mf.tensor(H.rand_table({ 2, 3 }, 10), "f64")
    local wt = mf.tensor(H.rand_table({ 2, 4, 8 }, 11), "f64")
    local function s_of()
      local logits, tokens = vit(x)
      return (logits * wl):sum() + (tokens * wt):sum()
    end
    assert.equal(3 * 30, G.check_parameters(vit, s_of))
    -- in the input, both modes
    G.check("ViT logits(x)", function(xx) return (vit(xx)) end, { { { 2, 2, 4, 4 } } }, { h = 1e-7 })
    G.check("ViT features(x)", function(xx) return vit:features(xx) end, { { { 2, 2, 4, 4 } } }, { h = 1e-7 })
  end)

  it("trains: 40 AdamW steps of cross-entropy fit 8 labelled images", function()
    local vit = nn.ViT { input_size = 8, patch_size = 4, in_channels = 1, hidden_size = 16, depth = 1, num_heads = 2,
      num_classes = 4, rngs = mf.Rngs(4) }
    local opt = mf.optim.AdamW(vit, { lr = 1e-2, weight_decay = 0 })
    local x = mf.Generator(5):normal({ 8, 1, 8, 8 })
    local y = mf.tensor({ 0, 1, 2, 3, 0, 1, 2, 3 }, "i32")
    local first, last
    for step = 1, 40 do
      opt:zero_grad()
      local loss = nn.F.cross_entropy((vit(x)), y)
      loss:backward()
      opt:step()
      if step == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(first > 1 and last < 0.1 * first, ("loss %g -> %g"):format(first, last))
  end)
end)

describe("nn.F.cross_entropy", function()
  local z = { { 1.5, -0.3, 0.2, 2.0 }, { -1, 0, 1, 0.5 }, { 0.3, 0.3, -2, 4 } }
  local labels = { 3, 0, 1 }

  local function softmax(r)
    local m = -math.huge
    for _, v in ipairs(r) do m = math.max(m, v) end
    local s, out = 0, {}
    for i, v in ipairs(r) do out[i] = math.exp(v - m); s = s + out[i] end
    for i = 1, #out do out[i] = out[i] / s end
    return out
  end

  it("is the mean of -log softmax at the labels, with gradient (softmax - onehot) / B", function()
    local dt = fp64 and "f64" or "f32"
    local logits = mf.tensor(z, dt):requires_grad()
    local loss = nn.F.cross_entropy(logits, mf.tensor(labels, "i32"))
    local want, grad = 0, {}
    for b, r in ipairs(z) do
      local p = softmax(r)
      want = want - math.log(p[labels[b] + 1]) / #z
      grad[b] = {}
      for k = 1, #r do grad[b][k] = (p[k] - (k == labels[b] + 1 and 1 or 0)) / #z end
    end
    local tol = dt == "f64" and 1e-12 or 1e-6
    H.close(loss:item(), want, tol, tol, "loss")
    loss:backward()
    H.close(logits.grad:totable(), grad, tol, tol, "grad")
  end)

  it("names bad arguments; an out-of-range label is raised at the next read", function()
    local logits = mf.tensor(z)
    H.errors(function() nn.F.cross_entropy(logits, mf.tensor({ 0, 1, 2 })) end, "moonflow.nn.F.cross_entropy",
      "labels must be an i32 {3} tensor, got f32 {3}")
    H.errors(function() nn.F.cross_entropy(logits, mf.tensor({ 0, 1 }, "i32")) end, "i32 {3} tensor, got i32 {2}")
    H.errors(function() nn.F.cross_entropy(mf.zeros({ 3 }), mf.tensor({ 0 }, "i32")) end,
      "logits must be a {B, K} tensor, got shape {3}")
    H.errors(function() nn.F.cross_entropy(logits, mf.tensor({ 0, 4, 1 }, "i32")):item() end, "gather", "4")
  end)
end)
