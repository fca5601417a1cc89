-- DiT modules: MultiHeadAttention against the formula in Lua doubles, the
-- adaLN-Zero identity at init, shapes and names, gradient and jvp checks of
-- a tiny 2-block DiT (f64, central differences, every parameter tensor),
-- MeanFlow (jvp through the DiT) and SiT training on image-shaped data.
local mf = require "moonflow"
local H = require "helpers"
local G = require "autograd_check"
local nn, I = mf.nn, mf.interfaces

local fp64 = mf.device().fp64

local function tiny(dt, seed, extra)
  local o = { input_size = 4, patch_size = 2, in_channels = 1, hidden_size = 8, depth = 2, num_heads = 2,
    num_classes = 3, use_dt = true, dtype = dt, rngs = mf.Rngs(seed) }
  for k, v in pairs(extra or {}) do o[k] = v end
  return nn.DiT(o)
end

-- every parameter set to N(0, 0.3^2) values (the zero-initialized layers
-- would otherwise zero most gradients)
local function perturb(net, seed)
  local flat = net:flat_parameters()
  local n = flat:shape()[1]
  mf.no_grad(function() flat:copy_(mf.tensor(H.flatten(H.rand_table({ n }, seed, -0.6, 0.6)), { dtype = flat:dtype() })) end)
end

local function softmax_row(r)
  local m = -math.huge
  for _, v in ipairs(r) do m = math.max(m, v) end
  local s, out = 0, {}
  for i, v in ipairs(r) do out[i] = math.exp(v - m); s = s + out[i] end
  for i = 1, #out do out[i] = out[i] / s end
  return out
end

describe("nn.MultiHeadAttention", function()
  it("equals proj(concat_h softmax(q_h k_h^T / sqrt(d)) v_h) in Lua doubles", function()
    if not fp64 then pending("no f64 on this device") return end
    local D, h, N, B = 8, 2, 3, 2
    local m = nn.MultiHeadAttention { dim = D, num_heads = h, dtype = "f64", rngs = mf.Rngs(4) }
    m:flatten()
    perturb(m, 5)
    local xv = H.rand_table({ B, N, D }, 6)
    local got = m(mf.tensor(xv, "f64")):totable()
    local Wq, bq = m.qkv.weight:totable(), m.qkv.bias:tolist()
    local Wp, bp = m.proj.weight:totable(), m.proj.bias:tolist()
    local d = D // h
    for b = 1, B do
      local qkv = {}
      for n = 1, N do
        qkv[n] = {}
        for o = 1, 3 * D do
          local s = bq[o]
          for i = 1, D do s = s + Wq[o][i] * xv[b][n][i] end
          qkv[n][o] = s
        end
      end
      local cat = {}
      for n = 1, N do cat[n] = {} end
      for hh = 0, h - 1 do
        for n = 1, N do
          local sc = {}
          for mm = 1, N do
            local s = 0
            for j = 1, d do s = s + qkv[n][hh * d + j] * qkv[mm][D + hh * d + j] end
            sc[mm] = s / math.sqrt(d)
          end
          local p = softmax_row(sc)
          for j = 1, d do
            local s = 0
            for mm = 1, N do s = s + p[mm] * qkv[mm][2 * D + hh * d + j] end
            cat[n][hh * d + j] = s
          end
        end
      end
      for n = 1, N do
        local want = {}
        for o = 1, D do
          local s = bp[o]
          for i = 1, D do s = s + Wp[o][i] * cat[n][i] end
          want[o] = s
        end
        H.close(got[b][n], want, 1e-12, 1e-12, ("MHA row %d %d"):format(b, n))
      end
    end
  end)

  it("qkv_bias = false drops the qkv bias; bad dims are named", function()
    local m = nn.MultiHeadAttention { dim = 8, num_heads = 4, qkv_bias = false }
    assert.is_nil(m.qkv.bias)
    assert.is_not_nil(m.proj.bias)
    H.errors(function() nn.MultiHeadAttention { dim = 6, num_heads = 4 } end, "MultiHeadAttention", "6", "4")
    H.errors(function() m(mf.zeros({ 2, 3, 5 })) end, "MultiHeadAttention", "{2, 3, 5}")
  end)
end)

describe("nn.DiTBlock", function()
  it("equals its adaLN-Zero formula composed from single ops (f64)", function()
    if not fp64 then pending("no f64 on this device") return end
    local O = require "moonflow.ops"
    local D, B, N = 8, 2, 3
    local blk = nn.DiTBlock { hidden_size = D, num_heads = 2, dtype = "f64", rngs = mf.Rngs(40) }
    blk:flatten()
    perturb(blk, 41)
    local x = mf.tensor(H.rand_table({ B, N, D }, 42), "f64")
    local c = mf.tensor(H.rand_table({ B, D }, 43), "f64")
    local got = blk(x, c)
    local function lin(l, v) -- v W^T + b over the last dim
      local s = v:shape()
      local v2 = O.reshape(v, { #s == 3 and s[1] * s[2] or s[1], s[#s] })
      local y = O.add(O.matmul(v2, O.transpose(l.weight)), l.bias)
      if #s == 3 then y = O.reshape(y, { s[1], s[2], l.out_features }) end
      return y
    end
    local function ln(v) -- LayerNorm without affine, eps 1e-6
      local vc = O.sub(v, O.mean(v, 3, true))
      return O.div(vc, O.sqrt(O.add(O.mean(O.mul(vc, vc), 3, true), 1e-6)))
    end
    local function gelu_tanh(u) -- 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))
      local inner = O.mul(O.add(u, O.mul(O.mul(O.mul(u, u), u), 0.044715)), math.sqrt(2 / math.pi))
      return O.mul(O.mul(u, 0.5), O.add(O.tanh(inner), 1))
    end
    -- shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
    local mod = lin(blk.adaLN_modulation[2], O.silu(c))
    local function ch(i) return O.reshape(O.contiguous(O.narrow(mod, 2, (i - 1) * D + 1, D)), { B, 1, D }) end
    local function modulate(v, sh, sc) return O.add(O.mul(v, O.add(sc, 1)), sh) end
    local x1 = O.add(x, O.mul(ch(3), blk.attn(modulate(ln(x), ch(1), ch(2)))))
    local f = lin(blk.mlp.fc2, gelu_tanh(lin(blk.mlp.fc1, modulate(ln(x1), ch(4), ch(5)))))
    local want = O.add(x1, O.mul(ch(6), f))
    H.close(got:tolist(), want:tolist(), 1e-10, 1e-12, "DiTBlock")
  end)
end)

describe("nn.DiT", function()
  it("uses DiT's parameter names", function()
    local net = tiny("f32", 1)
    local names = {}
    for name, p in net:named_parameters() do names[#names + 1] = name .. " " .. table.concat(p:shape(), "x") end
    local want = {
      "x_embedder.proj.weight 8x4", "x_embedder.proj.bias 8",
      "t_embedder.mlp.0.weight 8x256", "t_embedder.mlp.0.bias 8",
      "t_embedder.mlp.2.weight 8x8", "t_embedder.mlp.2.bias 8",
      "y_embedder.embedding_table.weight 4x8",
      "dt_embedder.mlp.0.weight 8x256", "dt_embedder.mlp.0.bias 8",
      "dt_embedder.mlp.2.weight 8x8", "dt_embedder.mlp.2.bias 8",
    }
    for k = 0, 1 do
      for _, s in ipairs { "attn.qkv.weight 24x8", "attn.qkv.bias 24", "attn.proj.weight 8x8", "attn.proj.bias 8",
        "mlp.fc1.weight 32x8", "mlp.fc1.bias 32", "mlp.fc2.weight 8x32", "mlp.fc2.bias 8",
        "adaLN_modulation.1.weight 48x8", "adaLN_modulation.1.bias 48" } do
        want[#want + 1] = ("blocks.%d.%s"):format(k, s)
      end
    end
    for _, s in ipairs { "final_layer.linear.weight 4x8", "final_layer.linear.bias 4",
      "final_layer.adaLN_modulation.1.weight 16x8", "final_layer.adaLN_modulation.1.bias 16" } do
      want[#want + 1] = s
    end
    assert.same(want, names)
    assert.equal(8, net.hidden_size)
    assert.equal(3, net.num_classes)
  end)

  it("adaLN-Zero: every block is the identity at init and the output is exactly 0", function()
    local net = nn.DiT { input_size = 8, patch_size = 2, in_channels = 3, hidden_size = 16, depth = 3,
      num_heads = 4, num_classes = 5, rngs = mf.Rngs(2) }
    local x = mf.randn({ 2, 3, 8, 8 })
    local out, f = net(x, mf.tensor({ 0.3, 0.8 }), { y = mf.tensor({ 1, 5 }, "i32") })
    assert.same({ 2, 3, 8, 8 }, out:shape())
    assert.equal(3, #f)
    assert.same(H.map(function() return 0 end, out:tolist()), out:tolist())
    -- the embedded tokens, computed apart: patchify, proj, + the sin-cos table
    local tok = mf.nn.F.patchify(x, 2)
    local h0 = (net.x_embedder.proj(tok) + mf.nn.F.pos_embed_2d(16, 4, 4)):totable()
    for k = 1, 3 do
      assert.same({ 2, 16, 16 }, f[k]:shape())
      assert.same(h0, f[k]:totable())
    end
  end)

  it("keeps the shapes {B, C, H, W}, reads t as a number, labels and dt as given; bad input is named", function()
    local net = nn.DiT { input_size = 8, patch_size = 4, in_channels = 2, hidden_size = 16, depth = 1,
      num_heads = 2, use_dt = true, rngs = mf.Rngs(3) }
    perturb(net, 4)
    local x = mf.randn({ 3, 2, 8, 8 })
    local a = net(x, 0.5, { dt = 0.25 })
    local b = net(x, mf.full({ 3 }, 0.5), { dt = mf.full({ 3 }, 0.25) })
    assert.same({ 3, 2, 8, 8 }, a:shape())
    H.close(a:tolist(), b:tolist(), 1e-6, 1e-6, "number and tensor t")
    -- an EMA-style clone over the same flat buffer computes the same; to("f64") converts the fixed table too
    local twin = net:clone_structure(net:flat_parameters())
    H.close(twin(x, 0.5, { dt = 0.25 }):tolist(), a:tolist(), 0, 0, "clone_structure")
    if fp64 then -- at init (blocks are the identity) features[1] = proj(patches) + the position table
      local function fresh() return nn.DiT { input_size = 8, patch_size = 4, in_channels = 2, hidden_size = 16,
        depth = 1, num_heads = 2, use_dt = true, rngs = mf.Rngs(3) } end
      local n32, n64 = fresh(), fresh():to("f64")
      local _, f32 = n32(x, 0.5, { dt = 0.25 })
      local _, f64 = n64(x, 0.5, { dt = 0.25 })
      assert.equal("f64", f64[1]:dtype())
      H.close(f64[1]:tolist(), f32[1]:tolist(), 1e-5, 1e-6, "f64 copy")
    end
    local c = net(x, 0.5, { dt = 0.5 })
    assert.is_true((a - c):abs():max():item() > 1e-4, "dt changes the output")
    H.errors(function() net(mf.zeros({ 3, 2, 8, 4 }), 0.5) end, "DiT", "{3, 2, 8, 4}")
    H.errors(function() net(x, 0.5, { y = mf.zeros({ 3 }, "i32") }) end, "DiT", "num_classes")
    H.errors(function() nn.DiT { input_size = 6, patch_size = 4, in_channels = 1, hidden_size = 8, depth = 1,
      num_heads = 2 } end, "DiT", "6", "4")
    H.errors(function() nn.DiT { input_size = 8, patch_size = 2, in_channels = 1, hidden_size = 8, depth = 2,
      num_heads = 2, encoder_depth = 3 } end, "DiT", "encoder_depth", "3")
  end)

  it("the gradient of every parameter tensor matches central differences (f64)", function()
    if not fp64 then pending("no f64 on this device") return end
    local net = tiny("f64", 7)
    perturb(net, 8)
    local x = mf.tensor(H.rand_table({ 2, 1, 4, 4 }, 9), "f64")
    local t, cond = mf.tensor({ 0.3, 0.7 }, "f64"), { y = mf.tensor({ 2, 3 }, "i32"), dt = mf.tensor({ 0.1, 0.4 }, "f64") }
    local w = mf.tensor(H.rand_table({ 2, 1, 4, 4 }, 10), "f64")
    local wf = mf.tensor(H.rand_table({ 2, 4, 8 }, 11), "f64")
    -- s = sum(w out) + sum(wf features[1])
    local function s_of()
      local out, f = net(x, t, cond)
      return (out * w):sum() + (f[1] * wf):sum()
    end
    assert.equal(3 * 35, G.check_parameters(net, s_of))
  end)

  it("vjp and jvp in x and t match central differences (f64)", function()
    if not fp64 then pending("no f64 on this device") return end
    local net = tiny("f64", 12)
    perturb(net, 13)
    local cond = { y = mf.tensor({ 0, 3 }, "i32"), dt = mf.tensor({ 0.2, 0.05 }, "f64") }
    G.check("DiT(x, t)", function(x, t) return (net(x, t, cond)) end,
      { { { 2, 1, 4, 4 } }, { { 2 }, lo = 0.1, hi = 0.9 } }, { rtol = 1e-6, atol = 1e-8, h = 1e-7 })
    G.check("DiT features[2](x, dt)", function(x, dt)
      local _, f = net(x, mf.tensor({ 0.5, 0.6 }, "f64"), { y = cond.y, dt = dt })
      return f[2]
    end, { { { 2, 1, 4, 4 } }, { { 2 }, lo = 0, hi = 0.5 } }, { rtol = 1e-6, atol = 1e-8, h = 1e-7 })
  end)
end)

describe("DiT training", function()
  it("MeanFlow: loss and backward through the DiT (jvp), AdamW steps keep it finite", function()
    local net = nn.DiT { input_size = 8, patch_size = 2, in_channels = 1, hidden_size = 16, depth = 2,
      num_heads = 2, num_classes = 3, use_dt = true, rngs = mf.Rngs(20) }
    local m = I.MeanFlow { network = net, rngs = mf.Rngs(21) }
    local opt = mf.optim.AdamW(net, { lr = 1e-3 })
    local x = mf.randn({ 8, 1, 8, 8 }, { generator = mf.Generator(22) })
    local y = mf.randint({ 8 }, 0, 3, { generator = mf.Generator(23) })
    for step = 1, 4 do
      opt:zero_grad()
      local loss = m:loss(x, { y = y }).loss:mean()
      loss:backward()
      local v = loss:item()
      assert.is_true(v == v and v < math.huge and v > 0, "loss " .. v)
      local gn = net:flat_gradients():norm():item()
      assert.is_true(gn > 0 and gn < math.huge, "gradient norm " .. gn)
      assert.is_true(net.final_layer.linear.weight.grad:norm():item() > 0)
      -- adaLN-Zero: step 1 moves only the final linear, step 2 then the gates,
      -- and from step 3 the attention inside the blocks
      local gq = net.blocks[1].attn.qkv.weight.grad:norm():item()
      local gg = net.blocks[1].adaLN_modulation[2].weight.grad:norm():item()
      if step == 1 then assert.equal(0, gq); assert.equal(0, gg) end
      if step == 2 then assert.equal(0, gq); assert.is_true(gg > 0, "gate gradient at step 2") end
      if step >= 3 then assert.is_true(gq > 0, "qkv gradient at step " .. step) end
      opt:step()
    end
  end)

  it("SiT: 30 AdamW steps on a fixed batch (same t and noise) reduce the loss", function()
    local net = nn.DiT { input_size = 8, patch_size = 2, in_channels = 1, hidden_size = 16, depth = 2,
      num_heads = 2, num_classes = 2, rngs = mf.Rngs(30) }
    local opt = mf.optim.AdamW(net, { lr = 3e-3, weight_decay = 0 })
    local x = mf.randn({ 8, 1, 8, 8 }, { generator = mf.Generator(31) })
    local y = mf.randint({ 8 }, 0, 2, { generator = mf.Generator(32) })
    local first, last
    for step = 1, 30 do
      local s = I.SiT { network = net, rngs = mf.Rngs(33) } -- the same t and n every step
      opt:zero_grad()
      local loss = s:loss(x, { y = y }).loss:mean()
      loss:backward()
      opt:step()
      if step == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(first > 0.5, "first loss " .. first)
    assert.is_true(last < 0.6 * first, ("loss %g -> %g"):format(first, last))
  end)
end)

describe("DiT with REPA and the samplers", function()
  it("REPA aligns features[encoder_depth] {B, N, hidden}; Euler samples {B, C, H, W}", function()
    local net = nn.DiT { input_size = 8, patch_size = 2, in_channels = 2, hidden_size = 16, depth = 3,
      num_heads = 2, encoder_depth = 2, rngs = mf.Rngs(50) }
    local sit = I.SiT { network = net, rngs = mf.Rngs(51) }
    local r = I.REPA { interface = sit, feature_dim = 5, repa_loss_weight = 0.5, repa_depth = net.encoder_depth,
      proj_dim = 12, rngs = mf.Rngs(52) }
    local x = mf.randn({ 4, 2, 8, 8 })
    local out = r(x, mf.randn({ 4, 16, 5 }), nil, { return_aux = true })
    assert.same({ 4 }, out.loss:shape())
    -- aligned: features[2] of the same pass (same t and n from the same seeds),
    -- projected, scaled by 2 -> repa_loss = -1
    local target = mf.no_grad(function() return r.projector(out.features[2]) * 2 end)
    local again = mf.no_grad(function()
      local s2 = I.SiT { network = net, rngs = mf.Rngs(51) }
      local r2 = I.REPA { interface = s2, feature_dim = 5, repa_loss_weight = 0.5, repa_depth = 2, proj_dim = 12,
        rngs = mf.Rngs(52) }
      return r2(x, target)
    end)
    H.close(again.repa_loss:tolist(), { -1, -1, -1, -1 }, 1e-5, 1e-6, "aligned repa_loss")
    out.loss:mean():backward()
    assert.is_true(r.projector:flat_gradients():norm():item() > 0)
    -- 4 Euler steps from noise; the zero network at init moves nothing: x_0 = x_1 - integral of 0
    local z = mf.randn({ 3, 2, 8, 8 })
    local fresh = nn.DiT { input_size = 8, patch_size = 2, in_channels = 2, hidden_size = 16, depth = 1,
      num_heads = 2, rngs = mf.Rngs(53) }
    local s = mf.samplers.Euler { num_sampling_steps = 4 }:sample(nil, I.SiT { network = fresh }, z)
    assert.same({ 3, 2, 8, 8 }, s:shape())
    H.close(s:tolist(), z:tolist(), 0, 0, "identity flow")
  end)
end)

-- What the DiT's step leans on, counted in launches and allocations (the
-- values checked too): one copy to pack a view, no zero-filled buffer for
-- the gradient of a narrowed leaf whose gradient buffer is preset.
describe("DiT step economy", function()
  local O = require "moonflow.ops"

  it("ops.packed copies a permuted view once (one launch), values kept", function()
    local x = mf.tensor({ { { 1, 2, 3 }, { 4, 5, 6 } } }) -- {1, 2, 3}
    local v = x:permute { 1, 3, 2 }
    mf.synchronize()
    mf.reset_stats()
    local p = O.packed(v)
    assert.equal(1, mf.stats().launches)
    assert.same({ { { 1, 4 }, { 2, 5 }, { 3, 6 } } }, p:totable())
    assert.is_true(p:is_contiguous())
  end)

  it("narrow's vjp adds into a leaf's preset gradient in place (no full-size buffer)", function()
    local net = nn.Linear(3, 4, { rngs = mf.Rngs(1) })
    net:flatten()
    net:zero_grad()
    local W = net.weight -- {4, 3}, .grad a view into the flat gradient buffer
    mf.no_grad(function() W.grad:copy_(mf.tensor({ { 1, 1, 1 }, { 2, 2, 2 }, { 3, 3, 3 }, { 4, 4, 4 } })) end)
    local y = O.narrow(W, 1, 2, 2)
    local g = mf.tensor({ { 10, 20, 30 }, { 40, 50, 60 } })
    mf.synchronize()
    mf.reset_stats()
    y:backward(g)
    local s = mf.stats()
    assert.equal(0, s.allocs + s.reuses, "allocations")
    assert.equal(1, s.launches, "launches")
    assert.same({ { 1, 1, 1 }, { 12, 22, 32 }, { 43, 53, 63 }, { 4, 4, 4 } }, W.grad:totable())
  end)
end)
