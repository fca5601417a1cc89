-- mf.metrics (energy part): sample quality on the device.
--
-- Energy distance (Szekely & Rizzo), as the V-statistic over all pairs:
--   ED(x, y) = 2 mean_ij |x_i - y_j| - mean_ij |x_i - x_j| - mean_ij |y_i - y_j|.
-- Pairwise distances come from one matmul per row block:
--   |a - b|^2 = |a|^2 + |b|^2 - 2 a.b  (clamped at 0, then sqrt; cl/metrics.cl).
-- For two independent sets from one distribution, E[ED] = E|X - X'| (1/n + 1/m):
-- that is the floor a perfect model reaches at these sizes.
local core = require "moonflow.core"
local A = require "moonflow.autograd"

local M = {}

-- elements of one distance block (a field so that specs can shrink it)
M.block_elements = 1 << 22

local function rows2d(t, fn, what)
  if not A.is_tensor(t) then
    error(("moonflow.metrics.%s: %s must be a tensor, got %s"):format(fn, what, type(t)), 3)
  end
  local s = t:shape()
  if #s < 1 or s[1] < 1 then
    error(("moonflow.metrics.%s: %s must have at least one row, got shape {%s}"):format(fn, what, table.concat(s, ", ")), 3)
  end
  return t:reshape({ s[1], -1 })
end

-- sum over all pairs of |a_i - b_j| as a 1-element tensor (nothing read back)
local function pair_sum(a, b)
  local n, m = a:shape()[1], b:shape()[1]
  local a2 = (a * a):sum(2):contiguous()
  local b2 = (b * b):sum(2):contiguous()
  local bt = b:transpose(1, 2)
  local rows = math.max(1, M.block_elements // m)
  local total
  for i = 1, n, rows do
    local k = math.min(rows, n - i + 1)
    local ab = core.matmul(a:narrow(1, i, k), bt)
    local a2k = k == n and a2 or a2:narrow(1, i, k):clone() -- offset 0 for the kernel
    local s = core.pair_dist(ab, a2k, b2):sum()
    total = total and total + s or s
  end
  return total
end

-- x, y as {n, d} and {m, d} of dtype dt, centred on their joint mean (which
-- keeps |a|^2 + |b|^2 - 2 a.b from cancelling badly)
local function prepare(x, y, fn, dt)
  local a, b = rows2d(x, fn, "x"), rows2d(y, fn, "y")
  if a:shape()[2] ~= b:shape()[2] then
    error(("moonflow.metrics.%s: x has %d values per row, y has %d"):format(fn, a:shape()[2], b:shape()[2]), 3)
  end
  a, b = a:to(dt), b:to(dt)
  local n, m = a:shape()[1], b:shape()[1]
  local mu = (a:sum(1, true) + b:sum(1, true)) / (n + m)
  return (a - mu):contiguous(), (b - mu):contiguous(), n, m
end

-- energy_distance(x, y[, {dtype = "f32" | "f64"}]) -> number. x {n, ...} and
-- y {m, ...} hold one sample per row (flattened to {n, d}); one value is
-- read back at the end.
function M.energy_distance(x, y, opts)
  local dt = opts and opts.dtype or "f32"
  return A.no_grad(function()
    local a, b, n, m = prepare(x, y, "energy_distance", dt)
    local ed = pair_sum(a, b) * (2 / (n * m)) - pair_sum(a, a) * (1 / (n * n)) - pair_sum(b, b) * (1 / (m * m))
    return ed:item()
  end)
end

-- mean_distance(x, y) -> mean over all pairs of |x_i - y_j| (a number)
function M.mean_distance(x, y, opts)
  local dt = opts and opts.dtype or "f32"
  return A.no_grad(function()
    local a, b, n, m = prepare(x, y, "mean_distance", dt)
    return (pair_sum(a, b) * (1 / (n * m))):item()
  end)
end

-- energy_floor(source, n[, {m = n, method = "expected" | "sampled",
--   repeats = 4, generator, seed}]) -> floor, spread. The energy distance two
-- independent sets of n and m samples of source (anything with
-- :batch(k[, generator])) have from each other:
--   "expected" (default): its mean, E|X - X'| (1/n + 1/m), with E|X - X'|
--     estimated by the mean distance between two fresh sets (stable to ~1%);
--     spread is that estimate of E|X - X'|;
--   "sampled": the distance itself averaged over `repeats` pairs of sets;
--     spread is its standard error.
-- Draws use opts.generator, else a generator of opts.seed (default 7), so
-- the source's own stream is left as it was.
function M.energy_floor(source, n, opts)
  opts = opts or {}
  if type(source) ~= "table" or type(source.batch) ~= "function" then
    error("moonflow.metrics.energy_floor: source must have a :batch(n) method", 2)
  end
  if math.type(n) ~= "integer" or n < 1 then
    error(("moonflow.metrics.energy_floor: n must be a positive integer, got %s"):format(tostring(n)), 2)
  end
  local m = opts.m or n
  local g = opts.generator or require("moonflow.random").Generator(opts.seed or 7)
  local method = opts.method or "expected"
  if method == "expected" then
    local k = math.max(n, m, 1000)
    local delta = M.mean_distance((source:batch(k, g)), (source:batch(k, g)), opts)
    return delta * (1 / n + 1 / m), delta
  elseif method ~= "sampled" then
    error(("moonflow.metrics.energy_floor: method must be \"expected\" or \"sampled\", got %s"):format(tostring(method)), 2)
  end
  local reps = opts.repeats or 4
  local vals, s = {}, 0
  for r = 1, reps do
    local x = source:batch(n, g)
    local y = source:batch(m, g)
    vals[r] = M.energy_distance(x, y, opts)
    s = s + vals[r]
  end
  local mean = s / reps
  local v = 0
  for _, e in ipairs(vals) do v = v + (e - mean) ^ 2 end
  local se = reps > 1 and math.sqrt(v / (reps - 1) / reps) or 0 / 0
  return mean, se
end

return M
