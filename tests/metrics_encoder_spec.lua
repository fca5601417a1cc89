-- mf.metrics.Encoder (save / load of a ViT as "moonflow.encoder/1"),
-- fid_fashion and class_accuracy over a fixture Fashion-MNIST folder with a
-- tiny random encoder: a round trip gives identical logits; a corrupt or
-- mismatched file is an error that changes nothing; fid of the test split
-- against itself is 0, the floor is the FD of test vs train features at the
-- same count, repeated calls reuse the cached split moments; class_accuracy
-- equals a Lua argmax over the logits.
local mf = require "moonflow"
local H = require "helpers"
local E = mf.metrics.Encoder
local J = require "moonflow.json"

local function idx_head(typ, shape)
  local s = string.char(0, 0, typ, #shape)
  for _, d in ipairs(shape) do s = s .. string.pack(">I4", d) end
  return s
end

-- train (40 images) and t10k (30 images) of pseudo-random bytes, labels i % 10
local function fixture(dir)
  local state = 12345
  local function byte()
    state = (state * 1103515245 + 12345) % 2147483648
    return (state >> 16) % 256
  end
  for _, sp in ipairs { { "train", 40 }, { "t10k", 30 } } do
    local px = {}
    for i = 1, sp[2] * 784 do px[i] = string.char(byte()) end
    local lab = {}
    for i = 0, sp[2] - 1 do lab[#lab + 1] = string.char(i % 10) end
    mf.core.write_file(dir .. "/" .. sp[1] .. "-images-idx3-ubyte.gz", { idx_head(8, { sp[2], 28, 28 }), table.concat(px) }, true)
    mf.core.write_file(dir .. "/" .. sp[1] .. "-labels-idx1-ubyte.gz", { idx_head(8, { sp[2] }), table.concat(lab) }, true)
  end
end

local function tiny(seed)
  return mf.nn.ViT { input_size = 28, patch_size = 7, in_channels = 1, hidden_size = 8, depth = 1, num_heads = 2,
    num_classes = 10, rngs = mf.Rngs(seed) }
end

describe("metrics.Encoder", function()
  local dir
  setup(function() dir = H.tmpdir(); fixture(dir) end)
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

  it("saves a ViT and loads it back: identical logits, features and tokens", function()
    local vit = tiny(1)
    local p = dir .. "/enc.safetensors"
    E.save(p, vit, { test_accuracy = 0.125, note = "tiny" })
    local enc = E.load(p, { batch_size = 7 }) -- 30 images in batches of 7, the last one short
    assert.equal(8, enc.hidden_size)
    assert.equal(16, enc.num_tokens)
    assert.equal("moonflow.encoder/1", enc.metadata.format)
    assert.equal("0.125", enc.metadata.test_accuracy)
    assert.same({ input_size = 28, patch_size = 7, in_channels = 1, hidden_size = 8, depth = 1, num_heads = 2,
      mlp_ratio = 4, num_classes = 10 }, J.decode(enc.metadata.config))
    local x = mf.data.fashion_mnist({ split = "test", path = dir }):all()
    local want_logits, want_tokens = mf.no_grad(vit, x)
    assert.same(want_logits:totable(), enc:logits(x):totable())
    assert.same(want_tokens:totable(), enc:tokens(x):totable())
    assert.same(mf.no_grad(function() return vit:features(x) end):totable(), enc:features(x):totable())
    assert.same({ 30, 16, 8 }, enc:tokens(x):shape())
    H.errors(function() enc:features(mf.zeros({ 2, 1, 14, 14 })) end, "moonflow.metrics.Encoder:features",
      "{2, 1, 14, 14}", "{B, 1, 28, 28}")
  end)

  it("refuses corrupt and mismatched files without side effects", function()
    local vit = tiny(2)
    local good = dir .. "/good.safetensors"
    E.save(good, vit)
    local bytes = H.slurp(good)
    local rng = require("moonflow.random").default
    local before = rng:get_state()
    local function refuses(name, content, ...)
      local p = H.spit(dir .. "/" .. name, content)
      H.errors(function() E.load(p) end, "moonflow.metrics.Encoder.load", ...)
      assert.same(before, rng:get_state()) -- no draws from the default generator
      assert.equal(content, H.slurp(p))   -- the file is left as it was
    end
    refuses("truncated.safetensors", bytes:sub(1, #bytes - 10), "truncated.safetensors")
    -- a plain safetensors file of the same tensors: not an encoder
    local plain = dir .. "/plain.safetensors"
    mf.io.save_safetensors(plain, vit:state_dict(), { format = "something else" })
    refuses("plain2.safetensors", H.slurp(plain), "not a moonflow encoder", "something else")
    -- the config of a wider ViT than the tensors
    local cfg = vit:config()
    cfg.hidden_size = 16
    local wide = dir .. "/wide.safetensors"
    mf.io.save_safetensors(wide, vit:state_dict(), { format = "moonflow.encoder/1", config = J.encode(cfg) })
    refuses("wide2.safetensors", H.slurp(wide), "shape")
    cfg.hidden_size, cfg.depth = 8, 0
    mf.io.save_safetensors(wide, vit:state_dict(), { format = "moonflow.encoder/1", config = J.encode(cfg) })
    refuses("depth0.safetensors", H.slurp(wide), "config.depth is 0")
    mf.io.save_safetensors(wide, vit:state_dict(), { format = "moonflow.encoder/1", config = "{not json" })
    refuses("badjson.safetensors", H.slurp(wide), "metadata config is not JSON")
    -- a missing tensor
    local sd = vit:state_dict()
    sd["head.bias"] = nil
    mf.io.save_safetensors(wide, sd, { format = "moonflow.encoder/1", config = J.encode(vit:config()) })
    refuses("missing.safetensors", H.slurp(wide), "missing head.bias")
    H.errors(function() E.save(dir .. "/x.safetensors", vit, { format = "mine" }) end, "metadata key format is reserved")
    H.errors(function() E.save(dir .. "/x.safetensors", mf.nn.Linear(2, 2)) end, "expected an nn.ViT")
  end)

  it("fid_fashion: 0 for the test split against itself, the floor is FD(test, train) at the same count, cached", function()
    local enc = E.new(tiny(3), { batch_size = 16 })
    local test = mf.data.fashion_mnist({ split = "test", path = dir }):all()
    local train = mf.data.fashion_mnist({ split = "train", path = dir }):all()
    local r = mf.metrics.fid_fashion(test, { encoder = enc, n = 20, path = dir })
    assert.equal(20, r.n)
    local _, trs = mf.metrics.frechet_distance(enc:features(test:narrow(1, 1, 20)), enc:features(test:narrow(1, 1, 20)))
    -- LayerNorm features sum to 0 over F: S is singular, and the square root of
    -- its ~1e-20 rounding in the zero eigenvalue leaves ~1e-10
    assert.is_true(math.abs(r.fd) < 1e-6 * trs, ("fd %g, tr %g, floor %g"):format(r.fd, trs, r.floor))
    local ft, fr = enc:features(test:narrow(1, 1, 20)), enc:features(train:narrow(1, 1, 20))
    H.close(r.floor, mf.metrics.frechet_distance(ft, fr), 1e-9, 0, "floor")
    assert.is_true(r.floor > 0)
    -- other samples: the FD of their features against the test split's first k
    local samples = train:narrow(1, 21, 20)
    mf.synchronize()
    mf.reset_stats()
    local r2 = mf.metrics.fid_fashion(samples, { encoder = enc, n = 50, path = dir })
    local launches = mf.stats().launches
    assert.equal(20, r2.n) -- k = min(20 samples, n = 50, 30 test images)
    H.close(r2.fd, mf.metrics.frechet_distance(enc:features(samples), ft), 1e-9, 0, "fd")
    assert.equal(r.floor, r2.floor)
    -- the cached moments: the second call only encodes the samples (one batch
    -- of 20 costs the same launches as the first call's sample pass)
    mf.synchronize()
    mf.reset_stats()
    local r3 = mf.metrics.fid_fashion(samples, { encoder = enc, n = 50, path = dir })
    assert.equal(r2.fd, r3.fd)
    assert.equal(launches, mf.stats().launches)
    -- an encoder without the cache encodes both splits as well: 3 passes, not 1
    local fresh = E.new(enc.vit, { batch_size = 16 })
    mf.synchronize()
    mf.reset_stats()
    assert.equal(r2.fd, mf.metrics.fid_fashion(samples, { encoder = fresh, n = 50, path = dir }).fd)
    assert.is_true(mf.stats().launches > 2.5 * launches, ("%d launches, %d cached"):format(mf.stats().launches, launches))
    -- by path, and the reference split "train"
    local p = dir .. "/enc3.safetensors"
    E.save(p, enc.vit)
    local r4 = mf.metrics.fid_fashion(test, { encoder = p, n = 10, reference_split = "train", path = dir })
    H.close(r4.fd, mf.metrics.frechet_distance(enc:features(test:narrow(1, 1, 10)), enc:features(train:narrow(1, 1, 10))),
      1e-9, 0, "fd against train")
    H.errors(function() mf.metrics.fid_fashion(test, { encoder = enc, reference_split = "val", path = dir }) end,
      "moonflow.metrics.fid_fashion", "reference_split")
    H.errors(function() mf.metrics.fid_fashion(test, { encoder = 3 }) end, "encoder must be an Encoder")
  end)

  it("class_accuracy is the fraction of rows whose largest logit is the label's", function()
    local enc = E.new(tiny(4))
    local src = mf.data.fashion_mnist({ split = "train", path = dir })
    local x, y = src:all()
    local logits, labels = enc:logits(x):totable(), y:totable()
    -- labels that make the accuracy interesting: the argmax for rows 1..15, the label file's for the rest
    local lab, hits = {}, 0
    for i, row in ipairs(logits) do
      local best = 1
      for c = 2, #row do if row[c] > row[best] then best = c end end
      lab[i] = i <= 15 and best - 1 or labels[i]
      if best - 1 == lab[i] then hits = hits + 1 end
    end
    assert.is_true(hits >= 15 and hits < 40)
    H.close(mf.metrics.class_accuracy(x, mf.tensor(lab, "i32"), enc), hits / 40, 1e-7, 0)
    H.close(mf.metrics.class_accuracy(x, lab, enc), hits / 40, 1e-7, 0) -- a table of labels
    H.errors(function() mf.metrics.class_accuracy(x, mf.tensor({ 1, 2 }, "i32"), enc) end,
      "moonflow.metrics.class_accuracy", "labels must be i32 {40}, got i32 {2}")
  end)
end)
