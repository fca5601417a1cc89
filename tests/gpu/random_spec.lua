-- cl/random.cl on oclgrind: the device's Philox4x32-10 words equal a Lua reference
-- for draws larger than the grid (grid-stride loops), uniform and normal f32/f64.
local mf = require "moonflow"
local H = require "helpers"

local R = require "reference"
local philox, words = R.philox, R.philox_words

describe("random on the GPU shapes", function()
  it("randint over the i32 range gives the reference words, 2400 counters", function()
    local n = 4 * 2400
    local g = mf.Generator(12345)
    local v = g:randint({ n }, -2147483648, 2147483647):totable()
    for j = 0, n // 4 - 1, 53 do
      local r = words(12345, 0, j)
      for l = 1, 4 do
        local w = r[l] == 0 and 1 or r[l]
        assert.equal(w, v[4 * j + l] + 2147483648 + 1, ("counter %d lane %d"):format(j, l))
      end
    end
    assert.equal(n // 4, g:get_state().offset)
  end)

  it("uniform f32 and f64 take the reference bits; normal f32 is Box-Muller of them", function()
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
    end
    local z = mf.Generator(3):normal({ 40 }):totable()
    for j = 0, 9 do
      local r = words(3, 0, j)
      local u1 = ((r[1] >> 8) + 1) * 2 ^ -24
      local u2 = (r[2] >> 8) * 2 ^ -24
      H.close({ z[4 * j + 1] }, { math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2) }, 1e-5, 1e-5)
    end
    local zd = mf.Generator(4):normal({ 3000 }, { dtype = "f64" })
    H.close({ zd:mean():item() }, { 0 }, 0, 5 * math.sqrt(1 / 3000))
  end)
end)
