-- moonflow benchmarks: `scripts/moonflow bench [SECTION...]`.
-- Each section is scripts/bench/<name>.lua returning function(ctx); with no
-- arguments every section runs, in the order below. Figures go to stdout.
local root = os.getenv("MOONFLOW_ROOT") or "."
local sections = { "tensor", "train", "diffusion", "sampler" }
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
