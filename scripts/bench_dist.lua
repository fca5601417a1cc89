-- All-reduce time against buffer size, over mf.dist (host staging + MPI):
--   mpirun --allow-run-as-root --oversubscribe -np 2 \
--     lua5.4 scripts/bench_dist.lua [max_mib=64] [chunk_kib=4096]
-- (LUA_PATH/LUA_CPATH as scripts/moonflow sets them). Rank 0 prints one
-- line per size: the median and the fastest of the repetitions, the parts
-- of the fastest (waiting for device reads, in MPI, waiting for the last
-- writes), and its algorithm bandwidth bytes / time and the ring's bus
-- bandwidth 2 (P - 1) / P bytes / time. On a loaded machine the median
-- carries scheduling delays (a rank waiting for a descheduled partner); the
-- fastest is the cost of the work.
local mf = require "moonflow"
local D = mf.dist
D.init()
local max_mib = tonumber(arg[1]) or 64
D.chunk_bytes = math.floor((tonumber(arg[2]) or 4096) * 1024)
local P, rank = D.size(), D.rank()

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

if rank == 0 then
  print(("mf.dist.all_reduce, %d processes, %s, chunk %d KiB"):format(P, mf.device().name, D.chunk_bytes // 1024))
  print(("%10s %10s %10s %10s %10s %10s %10s %10s"):format("bytes", "median ms", "min ms", "read ms", "mpi ms",
    "write ms", "alg GB/s", "bus GB/s"))
end
local bytes = 4096
while bytes <= max_mib * 2 ^ 20 do
  local t = mf.full({ bytes // 4 }, rank + 1)
  local reps = bytes <= 2 ^ 20 and 30 or 8
  D.all_reduce(t, "sum") -- warm: staging buffer, queue
  local tot, rd, mp, wr = {}, {}, {}, {}
  for i = 1, reps do
    mf.synchronize()
    D.barrier()
    local t0 = D.wtime()
    D.all_reduce(t, "sum")
    tot[i] = D.wtime() - t0
    rd[i], mp[i], wr[i] = D.last_timing.read, D.last_timing.mpi, D.last_timing.write
  end
  if rank == 0 then
    local best = 1
    for i = 2, reps do if tot[i] < tot[best] then best = i end end
    local m = tot[best]
    print(("%10d %10.3f %10.3f %10.3f %10.3f %10.3f %10.2f %10.2f"):format(bytes, median({ table.unpack(tot) }) * 1e3,
      m * 1e3, rd[best] * 1e3, mp[best] * 1e3, wr[best] * 1e3, bytes / m / 1e9, 2 * (P - 1) / P * bytes / m / 1e9))
  end
  bytes = bytes * 4
end
D.barrier()
