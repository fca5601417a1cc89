local mf = require "moonflow"
local H = require "helpers"

describe("moonflow smoke", function()
  it("adds, reduces and multiplies against Lua doubles", function()
    local a = H.rand_table({ 3, 4 }, 7)
    local b = H.rand_table({ 4 }, 8)
    local t = mf.tensor(a) + mf.tensor(b)
    H.close(t:totable(), H.map(function(x, y) return x + y end, a, { b, b, b }))
    local s = 0
    for _, v in ipairs(H.flatten(a)) do s = s + v end
    H.close(mf.tensor(a):sum():item(), s, 1e-6)
  end)
end)
