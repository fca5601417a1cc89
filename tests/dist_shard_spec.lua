-- Row shards of random draws (data parallelism): rank r of P draws exactly
-- rows r B/P + 1 .. (r + 1) B/P of the single-process draw, bit for bit,
-- without drawing the rest, and every generator ends where the whole draw
-- leaves it. Checked on the Philox draws themselves, on the toy data, and on
-- the interfaces' time, noise and condition-dropout draws.
local mf = require "moonflow"

local function bits(t) return mf.core.flat(t:contiguous()) end

-- asserts a == b element for element (the same float64 values, NaN-free)
local function same(a, b, what)
  local x, y = bits(a), bits(b)
  assert(#x == #y, ("%s: %d values, expected %d"):format(what, #x, #y))
  for i = 1, #x do
    if x[i] ~= y[i] then error(("%s: element %d is %.17g, the full draw's %.17g"):format(what, i, x[i], y[i]), 2) end
  end
end

-- a generator in g's state
local function copy(g)
  local c = mf.Generator(0)
  c:set_state(g:get_state())
  return c
end

-- rows [a, b) (0-based) of t, contiguous
local function rows(t, a, b) return t:narrow(1, a + 1, b - a):contiguous() end

local SPLITS = { { 0, 4 }, { 4, 9 }, { 9, 13 }, { 3, 4 }, { 0, 13 } }

describe("Generator row draws", function()
  local kinds = {
    { "uniform", "f32" }, { "normal", "f32" }, { "uniform", "f64" }, { "normal", "f64" }, { "randint" },
  }
  local function make(g, kind, dt, shape, o)
    o = o or {}
    if kind == "randint" then return g:randint(shape, -50, 1000, o) end
    o.dtype = dt
    return g[kind](g, shape, o)
  end

  it("gives the rows of the whole draw and advances like it, for every width and row size", function()
    -- 13 rows of 1, 3, 2x3 and 5 elements: shards that start inside a counter
    for _, k in ipairs(kinds) do
      for _, inner in ipairs { {}, { 3 }, { 2, 3 }, { 5 } } do
        local shape = { 13, table.unpack(inner) }
        local g = mf.Generator(11)
        g.offset = 7
        local full = make(g, k[1], k[2], shape)
        for _, s in ipairs(SPLITS) do
          local h = mf.Generator(11)
          h.offset = 7
          local part = make(h, k[1], k[2], { s[2] - s[1], table.unpack(inner) }, { rows = { s[1], 13 } })
          same(part, rows(full, s[1], s[2]), ("%s %s rows [%d, %d) of {%s}"):format(k[1], k[2] or "", s[1], s[2],
            table.concat(shape, ", ")))
          assert.are.equal(g.offset, h.offset)
          -- the next draw continues identically
          same(make(h, k[1], k[2], { 4 }), make(copy(g), k[1], k[2], { 4 }), "the draw after")
        end
      end
    end
  end)

  it("in shard mode draws every {count, ...} shape as rows of the {total, ...} draw", function()
    local g = mf.Generator(3)
    local a, b = g:normal({ 8, 5 }), g:uniform({ 8 })
    for _, s in ipairs { { 0, 4 }, { 4, 8 }, { 2, 5 } } do
      local h = mf.Generator(3):shard(s[1], s[2] - s[1], 8)
      same(h:normal({ s[2] - s[1], 5 }), rows(a, s[1], s[2]), "normal in shard mode")
      same(h:uniform({ s[2] - s[1] }), rows(b, s[1], s[2]), "uniform in shard mode")
      assert.are.equal(g.offset, h.offset)
      assert.are.same({ first = s[1], count = s[2] - s[1], total = 8 }, h:sharding())
      -- rows = false: the shape as given
      same(h:uniform({ 8 }, { rows = false }), copy(g):uniform({ 8 }), "rows = false")
    end
  end)

  it("refuses a shape that shard mode cannot map, and rows outside the draw", function()
    local h = mf.Generator(0):shard(2, 4, 8)
    local ok, err = pcall(h.normal, h, { 3, 2 })
    assert.is_false(ok)
    assert.truthy(err:find("in shard mode %(rows 3%.%.6 of 8%) every draw has 4 rows"), err)
    ok, err = pcall(function() return mf.Generator(0):uniform({ 4 }, { rows = { 6, 8 } }) end)
    assert.is_false(ok)
    assert.truthy(err:find("rows %[6, 6 %+ 4%) do not lie in a draw of 8 rows"), err)
    ok, err = pcall(function() return mf.Generator(0):shard(5, 4, 8) end)
    assert.is_false(ok)
    assert.truthy(err:find("moonflow.Generator:shard: rows %[5, 9%) do not lie in %[0, 8%)"), err)
    -- set_state and get_state leave shard mode alone
    h:set_state({ seed = 1, offset = 2 })
    assert.are.same({ first = 2, count = 4, total = 8 }, h:sharding())
    assert.is_nil(h:shard(nil):sharding())
  end)
end)

-- the same streams, seeded alike, with the training streams in shard mode
local TRAIN_STREAMS = { "data", "time", "noise", "label_dropout" }
local function sharded_rngs(seed, first, count, total)
  local rngs = mf.Rngs(seed)
  for _, k in ipairs(TRAIN_STREAMS) do rngs[k]:shard(first, count, total) end
  return rngs
end

describe("shards of the training draws", function()
  local B, P = 12, 3

  it("toy data: rank r's batch is rows r B/P + 1 .. (r + 1) B/P of the whole batch", function()
    for _, name in ipairs(mf.data.toy_sets) do
      local full_src = mf.data.toy(name, { rngs = mf.Rngs(5) })
      local full1, full2 = full_src:batch(B), full_src:batch(B)
      for r = 0, P - 1 do
        local rng = sharded_rngs(5, r * B // P, B // P, B)
        local src = mf.data.toy(name, { rngs = rng })
        same(src:batch(B // P), rows(full1, r * B // P, (r + 1) * B // P), name .. " batch 1 rank " .. r)
        same(src:batch(B // P), rows(full2, r * B // P, (r + 1) * B // P), name .. " batch 2 rank " .. r)
      end
    end
  end)

  it("mixture data: rank r's batch is its rows of the whole batch", function()
    local gm = { means = { { 0, 0 }, { 2, 1 }, { -1, 3 } }, stds = { 0.5, 0.3, 0.2 }, weights = { 0.2, 0.5, 0.3 } }
    local full = mf.data.mixture(gm, { rngs = mf.Rngs(2) }):batch(B)
    for r = 0, P - 1 do
      local src = mf.data.mixture(gm, { rngs = sharded_rngs(2, r * B // P, B // P, B) })
      same(src:batch(B // P), rows(full, r * B // P, (r + 1) * B // P), "mixture rank " .. r)
    end
  end)

  it("a shuffled tensor source with flips and labels: its rows of each global batch, across epochs", function()
    -- 20 rows of 1x2x3 images, label = row; global batch 12, so the second
    -- batch starts a new epoch (a new device permutation) on every rank
    local N = 20
    local imgs = mf.arange(0, N * 6):reshape({ N, 1, 2, 3 })
    local labels = mf.arange(0, N, 1, "i32")
    local function source(rngs) return mf.data.tensors(imgs, { labels = labels, flip = true, rngs = rngs }) end
    local whole = source(mf.Rngs(4))
    local batches = {}
    for i = 1, 3 do batches[i] = { whole:batch(B) } end
    for r = 0, P - 1 do
      local src = source(sharded_rngs(4, r * B // P, B // P, B))
      for i = 1, 3 do
        local x, y = src:batch(B // P)
        same(x, rows(batches[i][1], r * B // P, (r + 1) * B // P), ("images, batch %d rank %d"):format(i, r))
        same(y, rows(batches[i][2], r * B // P, (r + 1) * B // P), ("labels, batch %d rank %d"):format(i, r))
      end
    end
  end)

  local x = mf.tensor {
    { 0.1, 0.2 }, { -0.3, 0.4 }, { 0.5, -0.6 }, { 0.7, 0.8 }, { -0.9, 1.0 }, { 1.1, 1.2 },
    { 1.3, -1.4 }, { 1.5, 1.6 }, { -1.7, 1.8 }, { 1.9, 2.0 }, { 2.1, -2.2 }, { 2.3, 2.4 },
  }
  local function net(xt, t) return xt * 2 + t:reshape({ -1, 1 }) end

  for _, case in ipairs {
    { "SiT", { train_time_dist_type = "logitnormal" } },
    { "SiT", { train_time_dist_type = "uniform" } },
    { "EDM", { train_time_dist_type = "lognormal" } },
  } do
    it(case[1] .. " " .. case[2].train_time_dist_type .. ": t, n, x_t and target of a shard are the whole batch's rows", function()
      local function iface(rngs)
        local o = { network = net, rngs = rngs }
        for k, v in pairs(case[2]) do o[k] = v end
        return mf.interfaces[case[1]](o)
      end
      local full = iface(mf.Rngs(9)):loss(x, nil, { return_aux = true })
      for r = 0, P - 1 do
        local a, b = r * B // P, (r + 1) * B // P
        local part = iface(sharded_rngs(9, a, b - a, B)):loss(rows(x, a, b), nil, { return_aux = true })
        for _, k in ipairs { "t", "n", "x_t", "target" } do
          same(part[k], rows(full[k], a, b), ("%s %s rank %d"):format(case[1], k, r))
        end
      end
    end)
  end

  it("MeanFlow: t, r (fm_portion counted over the whole batch) and the condition dropout of a shard", function()
    -- a labelled network: u = 2 x_t + t + dt + y / 10, with num_classes
    local lnet = setmetatable({ num_classes = 4 }, { __call = function(_, xt, t, cond)
      local out = xt * 2 + (t + cond.dt):reshape({ -1, 1 })
      if cond.y then out = out + cond.y:to("f32"):reshape({ -1, 1 }) * 0.1 end
      return out
    end })
    local y = mf.tensor({ 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3 }, { dtype = "i32" })
    local function iface(rngs)
      return mf.interfaces.MeanFlow { network = lnet, rngs = rngs, fm_portion = 0.5, cond_drop_ratio = 0.5 }
    end
    local fi = iface(mf.Rngs(4))
    local ft, fr = fi:sample_t_r({ B })
    local fn = fi:sample_n({ B, 2 })
    local fv, fy = fi:cond_drop(x, fn, x * 3, y, fi:null_label(B))
    -- the whole batch drops some rows and keeps others (the check has teeth)
    local dropped = 0
    for _, v in ipairs(fy:totable()) do if v == 4 then dropped = dropped + 1 end end
    assert.is_true(dropped > 0 and dropped < B, "dropped " .. dropped)
    for r = 0, P - 1 do
      local a, b = r * B // P, (r + 1) * B // P
      local it_ = iface(sharded_rngs(4, a, b - a, B))
      local t, rr = it_:sample_t_r({ b - a })
      same(t, rows(ft, a, b), "MeanFlow t rank " .. r)
      same(rr, rows(fr, a, b), "MeanFlow r rank " .. r)
      local n = it_:sample_n({ b - a, 2 })
      same(n, rows(fn, a, b), "MeanFlow n rank " .. r)
      local v, yy = it_:cond_drop(rows(x, a, b), n, rows(x, a, b) * 3, rows(y, a, b), it_:null_label(b - a))
      same(v, rows(fv, a, b), "MeanFlow dropped v rank " .. r)
      same(yy, rows(fy, a, b), "MeanFlow dropped y rank " .. r)
    end
  end)
end)
