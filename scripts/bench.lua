-- moonflow benchmarks: `scripts/moonflow bench [SECTION...]`.
-- Each section is scripts/bench/<name>.lua returning function(ctx); with no
-- arguments every section runs, in the order below. Figures go to stdout.
local root = os.getenv("MOONFLOW_ROOT") or "."
local sections = { "tensor", "train", "diffusion", "sampler", "dit" }
local want = { ... }
if #want == 0 then want = sections end

local mf = require "moonflow"
local ctx = { mf = mf, root = root, build = os.getenv("MOONFLOW_BUILD") or (root .. "/build") }

-- best-of-n wall time of fn() in seconds, synchronizing the device around it
function ctx.time(fn, reps)
  reps = reps or 5
  fn()
  mf.synchronize()
  local best = math.huge
  for _ = 1, reps do
    local s = ctx.now()
    fn()
    mf.synchronize()
    best = math.min(best, ctx.now() - s)
  end
  return best
end

ctx.now = mf.core.clock

-- stdout of a shell command ("" when it cannot run)
function ctx.sh(cmd)
  local f = io.popen(cmd .. " 2>/dev/null")
  if not f then return "" end
  local out = f:read("a") or ""
  f:close()
  return out
end

-- Best seconds per call of fn: batches of `inner` calls then one synchronize,
-- `reps` batches; garbage collected between batches so outputs come back
-- from the allocator's pool (warm pages) rather than fresh buffers.
function ctx.per_call(fn, inner, reps)
  fn()
  mf.synchronize()
  local best = math.huge
  for _ = 1, reps do
    collectgarbage()
    local s = ctx.now()
    for _ = 1, inner do fn() end
    mf.synchronize()
    best = math.min(best, (ctx.now() - s) / inner)
  end
  return best
end

-- The STREAM triad over host memory in GB/s (build/bin/stream_triad, OpenMP),
-- best of `runs` runs; nil when it is not built.
function ctx.triad(runs)
  local best
  for _ = 1, runs or 3 do
    local v = tonumber(ctx.sh(("%q %d 20"):format(ctx.build .. "/bin/stream_triad", 1 << 24)))
    if v and (not best or v > best) then best = v end
  end
  return best
end

print(("device: %s (%s)"):format(mf.device().name, mf.device().type))
for _, name in ipairs(want) do
  local path = ("%s/scripts/bench/%s.lua"):format(root, name)
  local chunk = loadfile(path)
  if chunk then
    print(("\n== %s =="):format(name))
    chunk()(ctx)
  elseif #{ ... } > 0 then
    error("bench: no section " .. name .. " (" .. path .. ")")
  end
end
