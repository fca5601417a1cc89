-- Reference computations in Lua doubles and integers, shared by the specs
-- (tests/*_spec.lua and the oclgrind specs of tests/gpu/).
local R = {}

local M32 = 0xffffffff
R.M32 = M32

-- Philox4x32-10 in Lua integers (64-bit wraparound keeps the low bits exact)
function R.philox(c, k)
  local c0, c1, c2, c3, k0, k1 = c[1], c[2], c[3], c[4], k[1], k[2]
  for _ = 1, 10 do
    local p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
    local hi0, lo0 = (p0 >> 32) & M32, p0 & M32
    local hi1, lo1 = (p1 >> 32) & M32, p1 & M32
    c0, c1, c2, c3 = hi1 ~ c1 ~ k0, lo1, hi0 ~ c3 ~ k1, lo0
    k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
  end
  return { c0, c1, c2, c3 }
end

-- the words behind element-group j of a draw from (seed, offset)
function R.philox_words(seed, offset, j)
  local c = offset + j
  return R.philox({ c & M32, (c >> 32) & M32, 0, 0 }, { seed & M32, (seed >> 32) & M32 })
end

-- softmax (or log_softmax) of each row of a table of rows, max subtracted
function R.softmax_rows(rows, log)
  local out = {}
  for i, r in ipairs(rows) do
    local m = -math.huge
    for _, v in ipairs(r) do m = math.max(m, v) end
    local s = 0
    for _, v in ipairs(r) do s = s + math.exp(v - m) end
    out[i] = {}
    for j, v in ipairs(r) do out[i][j] = log and v - m - math.log(s) or math.exp(v - m) / s end
  end
  return out
end

return R
