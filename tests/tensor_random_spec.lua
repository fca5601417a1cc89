-- Philox4x32-10 against Random123's known answers and a Lua reference;
-- distributions by their moments; reproducibility however draws are split.
--
-- Splitting guarantee: a draw of n elements uses counters offset .. offset +
-- ceil(n / w) - 1 (w = 4 elements per counter for f32 and i32, 2 for f64) and
-- advances the offset past them. So consecutive draws whose sizes are
-- multiples of w give exactly the numbers of one draw of the total size, and
-- no draw depends on how the device splits it into work-items.
local mf = require "moonflow"
local H = require "helpers"

local M32 = 0xffffffff

local R = require "reference"
local philox, words = R.philox, R.philox_words

local function equal_tables(a, b) H.close(a, b, 0, 0) end

describe("Philox4x32-10", function()
  it("the Lua reference reproduces Random123's known-answer vectors", function()
    assert.same({ 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 }, philox({ 0, 0, 0, 0 }, { 0, 0 }))
    assert.same({ 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd },
      philox({ M32, M32, M32, M32 }, { M32, M32 }))
    assert.same({ 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1 },
      philox({ 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344 }, { 0xa4093822, 0x299f31d0 }))
  end)

  -- randint over the whole i32 range maps word w to -2^31 + w - 1 (w > 0)
  local function device_words(seed, offset, n)
    local g = mf.Generator(seed)
    g:set_state { seed = seed, offset = offset }
    local v = g:randint({ n }, -2147483648, 2147483647):totable()
    local out = {}
    for i, x in ipairs(v) do out[i] = x + 2147483648 + 1 end
    return out, g
  end

  it("the device draws the same 32-bit words: seed 0 gives the zero-counter vector", function()
    local w = device_words(0, 0, 4)
    assert.same({ 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 }, w)
  end)

  it("the device words equal the reference for other seeds and 64-bit offsets", function()
    local cases = {
      { 0x299f31d0a4093822, 0x85a308d3243f6a88 }, -- the pi key, counter words 0 and 1
      { 12345, 0 }, { -1, 0xfffffffe }, { 7, 1 << 40 },
    }
    for _, cs in ipairs(cases) do
      local seed, off = cs[1], cs[2]
      local n = 4 * 600 -- more counters than work-items: grid-stride loops run
      local w, g = device_words(seed, off, n)
      for j = 0, n // 4 - 1, 37 do
        local r = words(seed, off, j)
        for l = 1, 4 do
          local expect = r[l] == 0 and 1 or r[l] -- w = 0 and w = 1 both map to low
          assert.equal(expect, w[4 * j + l], ("seed %d offset %d counter %d lane %d"):format(seed, off, j, l))
        end
      end
      assert.equal(off + n // 4, g:get_state().offset)
    end
  end)

  it("uniform f32 takes the top 24 bits, f64 takes 53 bits of two words", function()
    local g = mf.Generator(99)
    local u = g:uniform({ 64 }, { low = 0, high = 2 ^ 24 }):totable()
    for j = 0, 15 do
      local r = words(99, 0, j)
      for l = 1, 4 do assert.equal(r[l] >> 8, u[4 * j + l]) end
    end
    local d = g:uniform({ 32 }, { low = 0, high = 2 ^ 53, dtype = "f64" }):totable()
    for j = 0, 15 do
      local r = words(99, 16, j)
      assert.equal(((r[1] >> 5) << 26) | (r[2] >> 6), math.tointeger(d[2 * j + 1]))
      assert.equal(((r[3] >> 5) << 26) | (r[4] >> 6), math.tointeger(d[2 * j + 2]))
    end
  end)

  it("normal f32 is Box-Muller over the same words", function()
    local z = mf.Generator(3):normal({ 40 }):totable()
    for j = 0, 9 do
      local r = words(3, 0, j)
      for h = 0, 1 do
        local u1 = ((r[2 * h + 1] >> 8) + 1) * 2 ^ -24
        local u2 = (r[2 * h + 2] >> 8) * 2 ^ -24
        local rho = math.sqrt(-2 * math.log(u1))
        H.close(z[4 * j + 2 * h + 1], rho * math.cos(2 * math.pi * u2), 0, 1e-5 * (1 + rho))
        H.close(z[4 * j + 2 * h + 2], rho * math.sin(2 * math.pi * u2), 0, 1e-5 * (1 + rho))
      end
    end
  end)
end)

-- sample moments with tolerances of 6 standard errors
local function moments(x)
  local m = x:mean():item()
  local d = x - m
  local v = (d * d):mean():item()
  local k4 = (d * d * d * d):mean():item()
  return m, v, k4
end

describe("distributions", function()
  local n = 1 << 20

  it("uniform: range, mean 1/2, variance 1/12", function()
    for _, dt in ipairs { "f32", "f64" } do
      local u = mf.Generator(1):uniform({ n }, { dtype = dt })
      assert.equal(dt, u:dtype())
      assert.is_true(u:min():item() >= 0)
      assert.is_true(u:max():item() < 1)
      local m, v = moments(u)
      assert.is_true(math.abs(m - 0.5) < 6 * math.sqrt(1 / 12 / n), dt .. " mean " .. m)
      assert.is_true(math.abs(v - 1 / 12) < 6 * math.sqrt(1 / 180 / n), dt .. " var " .. v)
    end
    local w = mf.Generator(2):uniform({ n }, { low = -2, high = 3 })
    assert.is_true(w:min():item() >= -2 and w:max():item() < 3)
    local m = w:mean():item()
    assert.is_true(math.abs(m - 0.5) < 6 * 5 * math.sqrt(1 / 12 / n), "shifted mean " .. m)
    local p = mf.Generator(2):uniform({ 4 }, { -2, 3 }):totable() -- positional low, high
    for _, x in ipairs(p) do assert.is_true(x >= -2 and x < 3) end
  end)

  it("normal: mean, variance and kurtosis", function()
    for _, dt in ipairs { "f32", "f64" } do
      local z = mf.Generator(4):normal({ n }, { dtype = dt })
      local m, v, k4 = moments(z)
      assert.is_true(math.abs(m) < 6 / math.sqrt(n), dt .. " mean " .. m)
      assert.is_true(math.abs(v - 1) < 6 * math.sqrt(2 / n), dt .. " var " .. v)
      local kurt = k4 / (v * v) - 3 -- excess kurtosis, standard error sqrt(24 / n)
      assert.is_true(math.abs(kurt) < 6 * math.sqrt(24 / n), dt .. " kurtosis " .. kurt)
    end
    local s = mf.Generator(5):normal({ n }, { mean = 3, std = 0.5 })
    local m, v = moments(s)
    assert.is_true(math.abs(m - 3) < 6 * 0.5 / math.sqrt(n), "mean " .. m)
    assert.is_true(math.abs(v - 0.25) < 6 * 0.25 * math.sqrt(2 / n), "var " .. v)
  end)

  it("randint: range and frequencies (chi-square)", function()
    local lo, hi = -3, 4
    local k = hi - lo
    local x = mf.Generator(6):randint({ n }, lo, hi)
    assert.equal("i32", x:dtype())
    assert.equal(lo, x:min():item())
    assert.equal(hi - 1, x:max():item())
    local chi2, e = 0, n / k
    for v = lo, hi - 1 do
      local c = x:eq(v):sum():item()
      chi2 = chi2 + (c - e) ^ 2 / e
    end
    -- 6 degrees of freedom: P(chi2 > 35) < 5e-6
    assert.is_true(chi2 < 35, "chi2 " .. chi2)
    local y = mf.Generator(6):randint({ 1000 }, 5):totable() -- one bound: [0, 5)
    for _, v in ipairs(y) do assert.is_true(v >= 0 and v < 5 and math.type(v) == "integer") end
  end)
end)

describe("reproducibility", function()
  local kinds = {
    { "uniform f32", function(g, s) return g:uniform(s) end },
    { "uniform f64", function(g, s) return g:uniform(s, { dtype = "f64" }) end },
    { "normal f32", function(g, s) return g:normal(s) end },
    { "normal f64", function(g, s) return g:normal(s, { dtype = "f64" }) end },
    { "randint", function(g, s) return g:randint(s, 0, 1000) end },
  }

  it("draws of 8 then 8 equal one draw of 16 (sizes multiples of 4)", function()
    for _, kd in ipairs(kinds) do
      local g, h = mf.Generator(11), mf.Generator(11)
      local a, b = kd[2](g, { 8 }), kd[2](g, { 2, 4 })
      local c = kd[2](h, { 16 })
      equal_tables(mf.cat({ a, b:reshape { 8 } }):totable(), c:totable())
      assert.same(g:get_state(), h:get_state())
    end
  end)

  it("a large draw equals the same draw made in pieces", function()
    for _, kd in ipairs(kinds) do
      local whole = kd[2](mf.Generator(12), { 8192 }):totable()
      local g, parts = mf.Generator(12), {}
      for i = 1, 4 do parts[i] = kd[2](g, { 2048 }) end
      equal_tables(mf.cat(parts):totable(), whole)
    end
  end)

  it("sizes not a multiple of 4 start the next draw on a fresh counter", function()
    local g = mf.Generator(13)
    g:uniform({ 3 })
    assert.equal(1, g:get_state().offset)
    local second = g:uniform({ 4 }):totable()
    local ref = mf.Generator(13):uniform({ 8 }):totable()
    equal_tables(second, { ref[5], ref[6], ref[7], ref[8] })
  end)

  it("get_state / set_state replay the same numbers", function()
    local g = mf.Generator(14)
    g:normal({ 10 })
    local s = g:get_state()
    local a = g:normal({ 7, 3 }):totable()
    local b = g:uniform({ 5 }):totable()
    g:set_state(s)
    equal_tables(g:normal({ 7, 3 }):totable(), a)
    equal_tables(g:uniform({ 5 }):totable(), b)
    local other = mf.Generator(0)
    other:set_state(s)
    equal_tables(other:normal({ 7, 3 }):totable(), a)
    -- manual_seed restarts the stream
    local first = mf.Generator(14):normal({ 10 }):totable()
    equal_tables(g:manual_seed(14):normal({ 10 }):totable(), first)
  end)

  it("different seeds give different streams", function()
    local a = mf.Generator(1):uniform({ 16 }):totable()
    local b = mf.Generator(2):uniform({ 16 }):totable()
    local same = 0
    for i = 1, 16 do if a[i] == b[i] then same = same + 1 end end
    assert.is_true(same < 2)
  end)
end)

describe("Rngs and the default generator", function()
  local n = 1 << 16

  it("named streams are reproducible and independent", function()
    local r1, r2 = mf.Rngs(0), mf.Rngs(0)
    equal_tables(r1.noise:normal({ 64 }):totable(), r2.noise:normal({ 64 }):totable())
    -- drawing from one stream does not move another
    r1.time:uniform({ 100 })
    equal_tables(r1.params:uniform({ 8 }):totable(), r2.params:uniform({ 8 }):totable())
    local names = { "params", "time", "noise", "label_dropout", "sample" }
    local draws = {}
    local r = mf.Rngs(7)
    for i, name in ipairs(names) do draws[i] = r[name]:normal({ n }) end
    for i = 1, #names do
      for j = i + 1, #names do
        local c = (draws[i] * draws[j]):mean():item() -- correlation of unit normals
        assert.is_true(math.abs(c) < 6 / math.sqrt(n), names[i] .. "/" .. names[j] .. " corr " .. c)
      end
    end
    local other = mf.Rngs(8).noise:uniform({ 16 }):totable()
    local mine = mf.Rngs(7).noise:uniform({ 16 }):totable()
    local same = 0
    for i = 1, 16 do if other[i] == mine[i] then same = same + 1 end end
    assert.is_true(same < 2)
  end)

  it("Rngs state round-trips", function()
    local r = mf.Rngs(3)
    r.noise:normal({ 12 })
    r.time:uniform({ 4 })
    local s = r:get_state()
    local a, b = r.noise:normal({ 8 }):totable(), r.time:uniform({ 8 }):totable()
    local q = mf.Rngs(3)
    q:set_state(s)
    equal_tables(q.noise:normal({ 8 }):totable(), a)
    equal_tables(q.time:uniform({ 8 }):totable(), b)
  end)

  it("manual_seed, rand and randn use the default generator", function()
    mf.manual_seed(21)
    local a, b = mf.rand({ 3, 4 }), mf.randn({ 8 })
    mf.manual_seed(21)
    equal_tables(mf.rand({ 3, 4 }):totable(), a:totable())
    equal_tables(mf.randn({ 8 }):totable(), b:totable())
    local g = mf.Generator(21)
    equal_tables(g:uniform({ 3, 4 }):totable(), a:totable())
    equal_tables(g:normal({ 8 }):totable(), b:totable())
    assert.equal("f64", mf.randn({ 2 }, { dtype = "f64" }):dtype())
    mf.manual_seed(21)
    equal_tables(mf.randint({ 4 }, 0, 10):totable(), mf.Generator(21):randint({ 4 }, 0, 10):totable())
  end)
end)
