-- Views share storage without copies; copies do not. Up to 8 dims.
local mf = require "moonflow"
local H = require "helpers"

local function seq(shape, dt) -- 0, 1, 2, ... in C order
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return mf.arange(n, dt):reshape(shape)
end

describe("views", function()
  it("reshape of a contiguous tensor is a view, with -1 inferred", function()
    local x = seq { 2, 3, 4 }
    local r = x:reshape { 4, -1 }
    assert.same({ 4, 6 }, r:shape())
    assert.equal(x:storage(), r:storage())
    assert.same({ 6, 7, 8, 9, 10, 11 }, r:totable()[2])
    assert.same({ 24 }, x:reshape { -1 }:shape())
    assert.same({ 2, 12 }, x:reshape(2, -1):shape())
    assert.same({ 1, 24, 1 }, x:reshape { 1, -1, 1 }:shape())
    assert.same({ 24 }, x:flatten():shape())
    assert.equal(x:storage(), x:view { 6, 4 }:storage())
    r:narrow(1, 2, 1):fill_(-1) -- writes through the view
    assert.same({ 4, 5, -1, -1 }, x:totable()[1][2]) -- flat elements 6..11
    assert.same({ -1, -1, -1, -1 }, x:totable()[1][3])
  end)

  it("reshape of a non-contiguous tensor copies", function()
    local x = seq { 3, 4 }
    local r = x:t():reshape { 12 }
    assert.are_not.equal(x:storage(), r:storage())
    assert.same({ 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 }, r:totable())
  end)

  it("unsqueeze and squeeze are views", function()
    local x = seq { 3, 4 }
    assert.same({ 1, 3, 4 }, x:unsqueeze(1):shape())
    assert.same({ 3, 4, 1 }, x:unsqueeze(-1):shape())
    assert.same({ 3, 4 }, x:unsqueeze(2):squeeze():shape())
    assert.equal(x:storage(), x:unsqueeze(2):storage())
  end)

  it("transpose and permute swap strides, no copy", function()
    local x = seq { 2, 3, 4 }
    local t = x:transpose(1, 3)
    assert.same({ 4, 3, 2 }, t:shape())
    assert.same({ 1, 4, 12 }, t:strides())
    assert.equal(x:storage(), t:storage())
    assert.is_false(t:is_contiguous())
    assert.equal(1 * 12 + 2 * 4 + 3, t:totable()[4][3][2])
    local p = x:permute { 2, 3, 1 }
    assert.same({ 3, 4, 2 }, p:shape())
    assert.same({ 4, 1, 12 }, p:strides())
    local tp = p:totable()
    for i = 1, 2 do for j = 1, 3 do for k = 1, 4 do
      assert.equal((i - 1) * 12 + (j - 1) * 4 + (k - 1), tp[j][k][i])
    end end end
    assert.same(x:totable(), p:permute(3, 1, 2):totable())
    assert.same({ 4, 3, 2 }, x:permute { -1, -2, -3 }:shape())
    -- transpose defaults to the last two dims; t() of a matrix
    assert.same({ 2, 4, 3 }, x:transpose():shape())
    assert.same({ { 0, 3 }, { 1, 4 }, { 2, 5 } }, seq({ 2, 3 }):t():totable())
  end)

  it("narrow offsets into the same storage", function()
    local x = seq { 4, 5 }
    local n = x:narrow(2, 2, 3)
    assert.same({ 4, 3 }, n:shape())
    assert.equal(1, n:storage_offset())
    assert.equal(x:storage(), n:storage())
    assert.same({ 6, 7, 8 }, n:totable()[2])
    local nn = n:narrow(1, 3, 2):narrow(-1, 2, 2)
    assert.same({ { 12, 13 }, { 17, 18 } }, nn:totable())
    assert.equal(12, nn:storage_offset())
    assert.same({ 0, 5 }, x:narrow(1, 5, 0):shape())
    -- a narrow along dim 1 is contiguous: a reshape of it is still a view
    local rows = x:narrow(1, 2, 2)
    assert.is_true(rows:is_contiguous())
    local flat = rows:reshape { 10 }
    assert.equal(x:storage(), flat:storage())
    assert.same({ 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 }, flat:totable())
  end)

  it("expand broadcasts with stride 0", function()
    local x = mf.tensor({ { 1 }, { 2 }, { 3 } })
    local e = x:expand { 2, 3, 4 }
    assert.same({ 2, 3, 4 }, e:shape())
    assert.same({ 0, 1, 0 }, e:strides())
    assert.equal(x:storage(), e:storage())
    assert.same({ 3, 3, 3, 3 }, e:totable()[2][3])
    assert.same({ 3, 5 }, x:expand(-1, 5):shape())
    assert.equal(48, e:sum():item()) -- 2 blocks of 4 * (1 + 2 + 3)
    -- writes to the base show through the expanded view
    x:fill_(7)
    assert.same({ 7, 7, 7, 7 }, e:totable()[1][1])
  end)

  it("contiguous returns the same storage when already packed, a packed copy otherwise", function()
    local x = seq { 3, 4 }
    assert.equal(x:storage(), x:contiguous():storage())
    local t = x:t()
    local c = t:contiguous()
    assert.are_not.equal(x:storage(), c:storage())
    assert.is_true(c:is_contiguous())
    assert.same({ 3, 1 }, c:strides())
    assert.same(t:totable(), c:totable())
    local e = mf.tensor({ 1, 2 }):expand { 3, 2 }:contiguous()
    assert.same({ 2, 1 }, e:strides())
    assert.same({ { 1, 2 }, { 1, 2 }, { 1, 2 } }, e:totable())
  end)

  it("clone copies: writes do not reach the original", function()
    local x = seq { 2, 2 }
    local c = x:clone()
    assert.are_not.equal(x:storage(), c:storage())
    c:fill_(9)
    assert.same({ { 0, 1 }, { 2, 3 } }, x:totable())
    local ct = x:t():clone()
    assert.same({ { 0, 2 }, { 1, 3 } }, ct:totable())
    assert.is_true(ct:is_contiguous())
  end)

  it("to(dtype) converts values, same dtype returns the tensor itself", function()
    local x = mf.tensor({ { 1.75, -2.5 }, { 3.25, 1e6 } })
    assert.equal(x, x:to("f32"))
    local d = x:to("f64")
    assert.equal("f64", d:dtype())
    assert.same(x:totable(), d:totable())
    local i = x:to("i32")
    assert.same({ { 1, -2 }, { 3, 1000000 } }, i:totable()) -- truncation toward zero
    assert.same({ { 1, 3 }, { -2, 1000000 } }, x:t():to("i32"):totable())
    assert.same({ { 1, -2 }, { 3, 1000000 } }, i:to("f64"):totable())
    local back = mf.tensor({ 0.1 }, "f64"):to("f32"):totable()[1]
    assert.equal((string.unpack("f", string.pack("f", 0.1))), back)
  end)

  it("views of views compose, and writes through any of them are seen by all", function()
    local x = mf.zeros({ 4, 6 })
    local v = x:t():narrow(1, 2, 3):narrow(2, 2, 2) -- x[2:3, 2:4] transposed: {3, 2}
    assert.same({ 3, 2 }, v:shape())
    v:add_(mf.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }))
    local xt = x:totable()
    assert.same({ 0, 1, 3, 5, 0, 0 }, xt[2])
    assert.same({ 0, 2, 4, 6, 0, 0 }, xt[3])
    assert.equal(21, x:sum():item())
    local r = x:reshape { 2, 2, 6 }
    assert.same({ 0, 2, 4, 6, 0, 0 }, r:totable()[2][1])
  end)

  it("8-dim tensors: create, permute, reduce, broadcast", function()
    local shape = { 2, 1, 2, 3, 1, 2, 2, 2 }
    local x = seq(shape)
    assert.equal(8, x:dim())
    assert.equal(96, x:numel())
    local p = x:permute { 8, 7, 6, 5, 4, 3, 2, 1 }
    assert.same({ 2, 2, 2, 1, 3, 2, 1, 2 }, p:shape())
    -- element (a..h) of x sits at the reversed index of p
    local pt = p:contiguous():reshape { -1 }:totable()
    local sum = 0
    for _, v in ipairs(pt) do sum = sum + v end
    assert.equal(95 * 96 / 2, sum)
    assert.equal(95 * 96 / 2, p:sum():item())
    -- x[2,1,2,3,1,2,2,2] is the last element, 95; in p it is p[2,2,2,1,3,2,1,2]
    assert.equal(95, p:narrow(1, 2, 1):narrow(2, 2, 1):narrow(5, 3, 1):narrow(8, 2, 1)
      :narrow(3, 2, 1):narrow(6, 2, 1):sum():item())
    local y = x + mf.ones({ 2 }) -- broadcast over the last dim
    assert.equal(95 * 96 / 2 + 96, y:sum():item())
    assert.same({ 2, 1, 2, 3, 1, 2, 2, 1 }, x:sum(8, true):shape())
    H.close(x:sum({ 1, 3, 5, 7 }):reshape { -1 }:totable(),
      (function()
        local flat = x:contiguous():reshape { -1 }:totable()
        local out = {}
        -- remaining dims (2, 4, 6, 8) have sizes 1, 3, 2, 2
        for d4 = 0, 2 do for d6 = 0, 1 do for d8 = 0, 1 do
          local s = 0
          for d1 = 0, 1 do for d3 = 0, 1 do for d7 = 0, 1 do
            s = s + flat[1 + d1 * 48 + d3 * 24 + d4 * 8 + d6 * 4 + d7 * 2 + d8]
          end end end
          out[#out + 1] = s
        end end end
        return out
      end)(), 0, 0)
    H.errors(function() mf.zeros({ 1, 1, 1, 1, 1, 1, 1, 1, 1 }) end, "moonflow", "9 dims", "8")
  end)
end)
