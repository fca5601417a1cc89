-- DiT's image-side ops: patchify / unpatchify against an explicit loop of
-- DiT's formula, the fixed 2-D sine-cosine position embeddings against the
-- MAE/DiT formula, adaLN modulation (and fused with LayerNorm) against
-- closed forms; gradients (f64, both modes) against central differences.
local mf = require "moonflow"
local G = require "autograd_check"
local H = require "helpers"
local F = mf.nn.F

describe("patchify and unpatchify", function()
  -- x[b][c][y][x] = a distinct number per element
  local B, C, Hh, W, p = 2, 3, 4, 6, 2
  local function image()
    local t = {}
    for b = 1, B do
      t[b] = {}
      for c = 1, C do
        t[b][c] = {}
        for y = 1, Hh do
          t[b][c][y] = {}
          for x = 1, W do t[b][c][y][x] = 1000 * b + 100 * c + 10 * y + x end
        end
      end
    end
    return t
  end

  it("puts x[b, c, i p + u, j p + v] at token i (W/p) + j, feature (u p + v) C + c", function()
    local img = image()
    local tok = F.patchify(mf.tensor(img, "f64"), p)
    assert.same({ B, (Hh // p) * (W // p), p * p * C }, tok:shape())
    local got = tok:totable()
    local h, w = Hh // p, W // p
    for b = 1, B do
      for i = 0, h - 1 do
        for j = 0, w - 1 do
          for u = 0, p - 1 do
            for v = 0, p - 1 do
              for c = 0, C - 1 do
                local want = img[b][c + 1][i * p + u + 1][j * p + v + 1]
                assert.equal(want, got[b][i * w + j + 1][(u * p + v) * C + c + 1])
              end
            end
          end
        end
      end
    end
  end)

  it("unpatchify inverts patchify exactly (f32, non-square, p = 1 and p = H)", function()
    local g = mf.Generator(5)
    for _, case in ipairs { { 2, 3, 4, 6, 2 }, { 1, 1, 4, 4, 4 }, { 3, 2, 3, 5, 1 } } do
      local b, c, hh, ww, pp = table.unpack(case)
      local x = g:normal({ b, c, hh, ww })
      local t = F.patchify(x, pp)
      local back = F.unpatchify(t, pp, c, hh, ww)
      assert.same(x:shape(), back:shape())
      assert.same(x:tolist(), back:tolist())
      -- and the other way round
      assert.same(t:tolist(), F.patchify(F.unpatchify(t, pp, c, hh, ww), pp):tolist())
    end
  end)

  it("is differentiable in both modes", function()
    G.check("patchify", function(x) return F.patchify(x, 2) * x:sum() end, { { { 1, 2, 4, 2 } } })
    G.check("unpatchify", function(t) return F.unpatchify(t:square(), 2, 2, 2, 4) end, { { { 2, 2, 8 } } })
  end)

  it("rejects sizes not divisible by p and mismatched shapes", function()
    local x = mf.zeros({ 1, 3, 5, 4 })
    assert.has_error(function() F.patchify(x, 2) end,
      "moonflow.nn.F.patchify: H = 5 and W = 4 must be divisible by the patch size 2")
    assert.has_error(function() F.patchify(mf.zeros({ 3, 4 }), 2) end,
      "moonflow.nn.F.patchify: x must have 4 dims, got shape {3, 4}")
    assert.has_error(function() F.patchify(x, 0) end,
      "moonflow.nn.F.patchify: patch size must be a positive integer, got 0")
    assert.has_error(function() F.unpatchify(mf.zeros({ 1, 4, 12 }), 2, 3, 4, 6) end,
      "moonflow.nn.F.unpatchify: tokens of shape {1, 4, 12}, expected {B, 6, 12} for p = 2, C = 3, H = 4, W = 6")
  end)
end)

describe("pos_embed_2d", function()
  it("equals MAE/DiT's get_2d_sincos_pos_embed (hand-checked entries)", function()
    local D, gh, gw = 8, 2, 3
    local e = F.pos_embed_2d(D, gh, gw, "f64")
    assert.same({ gh * gw, D }, e:shape())
    local t = e:totable()
    -- token 0 (row 0, col 0): sin 0 = 0, cos 0 = 1 in both halves
    H.close(t[1], { 0, 0, 1, 1, 0, 0, 1, 1 }, 0, 0, "token (0, 0)")
    -- token 5 = row 1, col 2: omega = {1, 10000^-1/2 = 0.01}; first half col 2, second row 1
    H.close(t[6], { math.sin(2), math.sin(0.02), math.cos(2), math.cos(0.02),
      math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01) }, 1e-15, 1e-15, "token (1, 2)")
    -- token 3 = row 1, col 0
    H.close(t[4], { 0, 0, 1, 1, math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01) }, 1e-15, 1e-15, "token (1, 0)")
  end)

  it("follows the formula at every entry for a DiT-sized table, in f32", function()
    local D, g = 16, 7
    local t = F.pos_embed_2d(D, g, g):totable()
    local q = D // 4
    for i = 0, g - 1 do
      for j = 0, g - 1 do
        local want = {}
        for k = 0, q - 1 do
          local om = 1 / 10000 ^ (2 * k / (D / 2)) -- MAE: omega = 1 / 10000^(2k / (D/2))
          want[k + 1], want[q + k + 1] = math.sin(j * om), math.cos(j * om)
          want[2 * q + k + 1], want[3 * q + k + 1] = math.sin(i * om), math.cos(i * om)
        end
        H.close(t[i * g + j + 1], want, 1e-6, 1e-6, ("token (%d, %d)"):format(i, j))
      end
    end
  end)

  it("rejects a dim not divisible by 4", function()
    assert.has_error(function() F.pos_embed_2d(6, 2, 2) end,
      "moonflow.nn.F.pos_embed_2d: dim must be a positive multiple of 4, got 6")
  end)
end)

describe("adaLN modulation", function()
  local B, N, D = 2, 3, 5
  local function vals(shape, seed) return H.rand_table(shape, seed, -1, 1) end

  it("modulate = x (1 + scale[b]) + shift[b] for every token", function()
    local x, sh, sc = vals({ B, N, D }, 1), vals({ B, D }, 2), vals({ B, D }, 3)
    local y = F.modulate(mf.tensor(x, "f64"), mf.tensor(sh, "f64"), mf.tensor(sc, "f64")):totable()
    for b = 1, B do
      for n = 1, N do
        for d = 1, D do
          H.close({ y[b][n][d] }, { x[b][n][d] * (1 + sc[b][d]) + sh[b][d] }, 1e-15, 1e-15, "modulate")
        end
      end
    end
  end)

  it("layer_norm_modulate = modulate(LayerNorm(x), shift, scale), eps 1e-6 by default", function()
    local x, sh, sc = vals({ B, N, D }, 4), vals({ B, D }, 5), vals({ B, D }, 6)
    local y = F.layer_norm_modulate(mf.tensor(x, "f64"), mf.tensor(sh, "f64"), mf.tensor(sc, "f64")):totable()
    for b = 1, B do
      for n = 1, N do
        local r = x[b][n]
        local mu, var = 0, 0
        for d = 1, D do mu = mu + r[d] / D end
        for d = 1, D do var = var + (r[d] - mu) ^ 2 / D end
        for d = 1, D do
          local want = (r[d] - mu) / math.sqrt(var + 1e-6) * (1 + sc[b][d]) + sh[b][d]
          H.close({ y[b][n][d] }, { want }, 1e-13, 1e-13, "layer_norm_modulate")
        end
      end
    end
  end)

  it("the fused layer_norm_modulate equals the composite (f32, DiT-like rows), and its derivatives too", function()
    local g = mf.Generator(8)
    local x, sh, sc = g:normal({ 4, 7, 40 }), g:normal({ 4, 40 }), g:normal({ 4, 40 })
    H.close(F.layer_norm_modulate(x, sh, sc):tolist(), F.layer_norm_modulate_composite(x, sh, sc):tolist(),
      1e-5, 1e-5, "fused vs composite")
    local w = g:normal({ 4, 7, 40 }, { dtype = "f64" })
    local got = {}
    for i, fn in ipairs { F.layer_norm_modulate, F.layer_norm_modulate_composite } do
      local a, b, c = x:to("f64"):requires_grad(), sh:to("f64"):requires_grad(), sc:to("f64"):requires_grad()
      fn(a, b, c):backward(w)
      local _, t = mf.autograd.jvp(fn, { x:to("f64"), sh:to("f64"), sc:to("f64") }, { w, sh:to("f64"), w:narrow(2, 1, 1):reshape({ 4, 40 }) })
      got[i] = { a.grad:tolist(), b.grad:tolist(), c.grad:tolist(), t:tolist() }
    end
    for j, what in ipairs { "gx", "gshift", "gscale", "jvp" } do H.close(got[1][j], got[2][j], 1e-11, 1e-12, what) end
  end)

  it("both are differentiable in x, shift and scale (both modes)", function()
    G.check("modulate", function(x, sh, sc) return F.modulate(x, sh, sc) end,
      { { { B, N, D } }, { { B, D } }, { { B, D } } })
    G.check("layer_norm_modulate", function(x, sh, sc) return F.layer_norm_modulate(x, sh, sc) end,
      { { { B, N, D } }, { { B, D } }, { { B, D } } }, { rtol = 1e-5, atol = 1e-7 })
    G.check("layer_norm_modulate_composite", function(x, sh, sc) return F.layer_norm_modulate_composite(x, sh, sc) end,
      { { { B, N, D } }, { { B, D } }, { { B, D } } }, { rtol = 1e-5, atol = 1e-7 })
    -- a tangent in x alone, in shift alone (the kernel's flags)
    local x0 = mf.tensor(vals({ B, N, D }, 9), "f64")
    G.check("lnm in shift", function(sh) return F.layer_norm_modulate(x0, sh, sh * 2) end, { { { B, D } } })
    local s0 = mf.tensor(vals({ B, D }, 10), "f64")
    G.check("lnm in x", function(x) return F.layer_norm_modulate(x, s0, s0) end, { { { B, N, D } } }, { rtol = 1e-5, atol = 1e-7 })
  end)

  it("rejects shift and scale of the wrong shape", function()
    local x = mf.zeros({ B, N, D })
    assert.has_error(function() F.modulate(x, mf.zeros({ B, D }), mf.zeros({ B, N, D })) end,
      "moonflow.nn.F.modulate: scale must have 2 dims, got shape {2, 3, 5}")
    assert.has_error(function() F.layer_norm_modulate(x, mf.zeros({ 1, D }), mf.zeros({ B, D })) end,
      "moonflow.nn.F.layer_norm_modulate: shift has shape {1, 5}, expected {2, 5}")
  end)
end)
