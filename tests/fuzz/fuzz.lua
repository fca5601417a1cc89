-- The mutation fuzzer of moonflow's loaders (run by tests/fuzz/run.sh).
--   fuzz.lua run <loader> <first> <count> <seed> <workdir>   inputs first .. first+count-1
--   fuzz.lua make <loader> <index> <seed> <file>             writes input <index> (a reproducer)
--   fuzz.lua replay <loader> <file>                          runs the loader once, prints the outcome
-- Input i is a pure function of (loader, seed, i): math.randomseed(seed, i) before mutating.
-- Outcomes: accepted, a Lua error naming the moonflow function (a correct rejection), or a
-- finding: unclear (a Lua error that names no moonflow function), garbage (an oracle of
-- tests/fuzz/targets.lua failed), hang (over FUZZ_HANG_S = 5 s of CPU), memory (peak RSS
-- growth of the input above MEM_BASE + MEM_PER_BYTE * its size + what the target says an
-- accepted input legitimately produced (inflated bytes, the header's data), twice, or "out of host
-- memory" under the RLIMIT_AS that supervise.sh sets). Crashes and C-level hangs are seen
-- by supervise.sh from outside.
local root = os.getenv("MOONFLOW_ROOT") or "."
local build = os.getenv("MOONFLOW_BUILD") or (root .. "/build")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/tests/fuzz/?.lua;" .. package.path
package.cpath = build .. "/lua/?.so;" .. package.cpath
local core = require "moonflow.core"
local T = require "targets"
local M = require "mutate"

local HANG_S = tonumber(os.getenv("FUZZ_HANG_S") or "5")
-- per-input budget of peak RSS growth: any input may use MEM_BASE KiB and MEM_PER_BYTE
-- times its own size (a loader's memory must be bounded by what it reads)
local MEM_BASE = tonumber(os.getenv("FUZZ_MEM_BASE_KB") or "65536")
local MEM_PER_BYTE = tonumber(os.getenv("FUZZ_MEM_PER_BYTE") or "64")

local cmd, loader = arg[1], arg[2]
local target = T[loader]
if not target then error("fuzz.lua: unknown loader " .. tostring(loader)) end

local function slurp(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local function spit(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

local function seeds()
  local dir = root .. "/tests/fuzz/corpus/" .. loader
  local list = {}
  local p = io.popen(("ls %q"):format(dir))
  for name in p:lines() do list[#list + 1] = slurp(dir .. "/" .. name) end
  p:close()
  assert(#list > 0, "fuzz.lua: empty corpus " .. dir)
  return list
end

-- input i as bytes, or nil and a path already written (gzip bombs go through zlib)
local function make(corpus, seed, i, path)
  math.randomseed(seed, i)
  if (loader == "gzip" or loader == "idx") and math.random(400) == 1 then
    -- an inflation bomb: a few KiB of gzip for up to 64 MiB of content
    local n = 1 << math.random(20, 26)
    local body = loader == "idx" and (string.char(0, 0, 8, 2) .. string.pack(">I4>I4", n // 1024, 1024)) or ""
    core.write_file(path, body .. ("\0"):rep(n), true)
    return nil
  end
  local a = corpus[math.random(#corpus)]
  local b = corpus[math.random(#corpus)]
  local s = M.mutate(a, b, loader)
  if loader == "idx" and math.random(8) == 1 then -- the gzipped form of a mutated IDX file
    core.write_file(path, s, true)
    return nil
  end
  spit(path, s)
  return s
end

local function status_kb(field)
  local f = io.open("/proc/self/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end
local function reset_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if f then f:write("5") f:close() end
end

-- runs the loader on one input -> kind ("accepted", "rejected" or a finding), message, KiB used
local function run_one(path, bytes)
  bytes = bytes or slurp(path)
  reset_peak()
  local rss0 = status_kb("VmRSS")
  local deadline = os.clock() + HANG_S
  debug.sethook(function()
    if os.clock() > deadline then error("fuzz: hang (over " .. HANG_S .. " s of CPU)", 0) end
  end, "", 10000)
  local ok, res, why, produced = pcall(target.run, path, bytes)
  debug.sethook()
  local hwm = status_kb("VmHWM")
  local used = hwm - rss0
  local limit = MEM_BASE + MEM_PER_BYTE * #bytes // 1024 + (ok and produced or 0) // 1024
  local kind, msg
  if not ok then
    msg = tostring(res)
    if msg:find("^fuzz: hang") then kind = "hang"
    elseif msg:find("out of host memory") or msg:find("not enough memory") then kind = "memory"
    elseif type(res) == "string" and res:find(target.ok) then kind = "rejected"
    else kind = "unclear" end
  elseif why then
    kind, msg = "garbage", why
  else
    kind = "accepted"
  end
  if (kind == "accepted" or kind == "rejected") and used > limit then
    kind, msg = "memory", ("peak RSS grew %d KiB on a %d-byte input (limit %d KiB)%s"):format(
      used, #bytes, limit, msg and ": " .. msg or "")
  end
  return kind, msg, used, #bytes, hwm
end

if cmd == "make" then
  local i, seed, file = math.tointeger(tonumber(arg[3])), math.tointeger(tonumber(arg[4])), arg[5]
  make(seeds(), seed, i, file)
  return
end

if cmd == "replay" then
  for _, s in ipairs(seeds()) do -- warm-up, as in a run: kernels compiled, caches filled
    local p = os.tmpname()
    spit(p, s)
    pcall(target.run, p, s)
    os.remove(p)
  end
  local kind, msg, used, size = run_one(arg[3])
  print(("%s %s: %s (%d bytes, peak +%d KiB)"):format(loader, kind, msg or "", size, used))
  os.exit(kind == "accepted" or kind == "rejected")
end

assert(cmd == "run", "usage: fuzz.lua run|make|replay ...")
local first, count = math.tointeger(tonumber(arg[3])), math.tointeger(tonumber(arg[4]))
local seed, work = math.tointeger(tonumber(arg[5])), arg[6]
local corpus = seeds()
local path = work .. "/cur.bin"
local trace = assert(io.open(work .. "/trace", "a"))
local found = assert(io.open(work .. "/findings.txt", "a"))
local st = { run = 0, accepted = 0, rejected = 0, unclear = 0, garbage = 0, hang = 0, memory = 0, peak_kb = 0,
  rss_kb = 0 }
local seen, saved = {}, {} -- message shapes already saved; how many per kind

-- warm-up: the seeds themselves must load (this also compiles the kernels and fills the
-- allocator's caches, which must not count as the first input's memory)
for _, s in ipairs(corpus) do
  spit(path, s)
  run_one(path, s)
end
for k, s in ipairs(corpus) do
  spit(path, s)
  local kind, msg = run_one(path, s)
  if kind ~= "accepted" then
    found:write(("seed %d of corpus/%s is not accepted: %s %s\n"):format(k, loader, kind, tostring(msg)))
    st.unclear = st.unclear + 1
  end
end

local function save_stats()
  local f = assert(io.open(work .. "/stats." .. first, "w"))
  f:write(("run=%d accepted=%d rejected=%d unclear=%d garbage=%d hang=%d memory=%d peak_kb=%d rss_kb=%d\n"):format(
    st.run, st.accepted, st.rejected, st.unclear, st.garbage, st.hang, st.memory, st.peak_kb, st.rss_kb))
  f:close()
end

for i = first, first + count - 1 do
  trace:write(i, "\n")
  trace:flush()
  local bytes = make(corpus, seed, i, path)
  -- supervise.sh's own test: FUZZ_SELFTEST=crash:<i> or stall:<i> (a wait outside Lua)
  local what, at = (os.getenv("FUZZ_SELFTEST") or ""):match("^(%a+):(%d+)$")
  if tonumber(at) == i then
    if what == "crash" then os.exit(false, false) else os.execute("exec sleep 100") end
  end
  local kind, msg, used, _, hwm = run_one(path, bytes)
  if kind == "memory" and not (msg or ""):find("out of host memory") then
    -- confirm on a second run after a full collection: the garbage of earlier inputs
    -- can make one run's peak look like its own
    collectgarbage()
    local k2, m2, u2 = run_one(path, bytes)
    if k2 ~= "memory" then kind, msg, used = k2, m2, u2 end
  end
  st.run = st.run + 1
  if hwm > st.rss_kb then st.rss_kb = hwm end
  st[kind] = st[kind] + 1
  if used > st.peak_kb then st.peak_kb = used end
  if kind ~= "accepted" and kind ~= "rejected" then
    -- one saved input per kind of finding: the message without its numbers, paths,
    -- quoted excerpts and the input excerpt after " -- "
    local m = tostring(msg)
    local shape = (kind .. " " .. (m:match("^(.-) %-%- ") or m):gsub('"[^"]*"', "S"):gsub("%d+", "N")
      :gsub("/[%w_./-]+", "PATH")):sub(1, 200)
    if not seen[shape] and (saved[kind] or 0) < 10 then -- at most 10 distinct per kind
      seen[shape] = true
      saved[kind] = (saved[kind] or 0) + 1
      os.execute(("cp %q %q"):format(path, ("%s/finding-%s-%d.bin"):format(work, kind, i)))
      found:write(("%s input %d: %s\n"):format(kind, i, tostring(msg):gsub("\n", " | ")))
      found:flush()
    end
  end
  if st.run % 100 == 0 then
    collectgarbage() -- so that the garbage of earlier inputs does not pile up in RSS
    save_stats()
  end
end
save_stats()
trace:write("done\n")
trace:close()
