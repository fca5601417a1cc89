-- mf.dist: many processes over MPI (Open MPI's mpirun, Slurm's srun).
--   init()                      joins the job (a no-op in a single process)
--   rank(), size(), local_rank() this process, the job's size, the rank on this machine
--   all_reduce(t, op)           t <- op over ranks, in place: "sum", "mean", "max"
--   broadcast(t, root)          every rank's t <- root's t, in place
--   barrier(), abort(msg, code), launched(), available()
-- The MPI calls live in the optional C module moonflow.dist_mpi (built when
-- CMake finds MPI); without it available() is false and one process runs as
-- rank 0 of 1. Device tensors go through host staging in chunks that overlap
-- the device copies with MPI (src/lua/mpi/l_dist.c).
local core = require "moonflow.core"

local D = {}

local ok, mpi = pcall(require, "moonflow.dist_mpi")
if not ok then mpi = nil end

-- seconds of the last all_reduce: {read = waiting for device reads, mpi =
-- in MPI, write = waiting for the last writes} (nil before any)
D.last_timing = nil

-- bytes per staging chunk (a whole number of elements): MPI reduces one
-- chunk while the device copies the next. nil: 4 MiB per 16 ranks (each
-- chunk pays the ring's 2 (P - 1) latencies once: docs/SCALING.md).
D.chunk_bytes = nil
local function chunk_bytes() return D.chunk_bytes or (4 << 20) * ((D.size() + 15) // 16) end

local function fail(fn, fmt, ...) error(("moonflow.dist.%s: " .. fmt):format(fn, ...), 3) end

-- whether the MPI module was built
function D.available() return mpi ~= nil end

local function env_int(name)
  local v = os.getenv(name)
  return v and math.tointeger(tonumber(v)) or nil
end

-- the job's size as the launcher tells it (Open MPI, then PMI: MPICH, Slurm), or nil
function D.launched_size()
  return env_int("OMPI_COMM_WORLD_SIZE") or env_int("PMI_SIZE") or env_int("PMIX_SIZE")
end

-- whether a launcher started this process as one of several
function D.launched()
  local n = D.launched_size()
  return n ~= nil and n > 1
end

local function live() return mpi ~= nil and mpi.initialized() end

-- The device index for a rank from the device list (mf.devices()): with
-- several GPUs, GPU number local_rank mod #GPUs; else nil (the default pick).
function D.device_for(local_rank, devices)
  local gpus = {}
  for _, d in ipairs(devices) do if d.type == "gpu" then gpus[#gpus + 1] = d.index end end
  if #gpus > 1 then return gpus[local_rank % #gpus + 1] end
  return nil
end

-- Picks this rank's device before the OpenCL runtime starts, unless
-- MOONFLOW_DEVICE says which.
local function pick_device(local_rank)
  local want = os.getenv("MOONFLOW_DEVICE")
  if want and want ~= "" then return end
  local okd, list = pcall(core.devices)
  if not okd then return end
  local i = D.device_for(local_rank, list)
  if i then mpi.setenv("MOONFLOW_DEVICE", tostring(i)) end
end

-- Joins the job. Under a launcher with more than one process this needs the
-- MPI module; in a single process it does nothing. Call it before the first
-- tensor, so that each rank can pick its device.
function D.init()
  if mpi == nil then
    if D.launched() then
      fail("init", "started as one of %d processes, but moonflow was built without MPI "
        .. "(install libopenmpi-dev and rebuild: scripts/setup.sh)", D.launched_size())
    end
    return D
  end
  if not mpi.initialized() then
    local lr = env_int("OMPI_COMM_WORLD_LOCAL_RANK") or env_int("MPI_LOCALRANKID") or env_int("SLURM_LOCALID")
    if lr then pick_device(lr) end
    mpi.init()
    pick_device(mpi.local_rank())
  end
  return D
end

function D.rank() return live() and mpi.rank() or 0 end
function D.size() return live() and mpi.size() or 1 end
function D.local_rank() return live() and mpi.local_rank() or 0 end
function D.local_size() return live() and mpi.local_size() or 1 end

function D.barrier()
  if live() then mpi.barrier() end
end

local OPS = { sum = true, mean = true, max = true }

local function check_tensor(fn, t)
  if not require("moonflow.autograd").is_tensor(t) then fail(fn, "expected a tensor, got %s", type(t)) end
end

-- contiguous tensors in place; any other layout through a contiguous copy
local function contiguous(t)
  local shape, strides, want = core.shape(t), core.strides(t), 1
  for d = #shape, 1, -1 do
    if shape[d] ~= 1 and strides[d] ~= want then return false end
    want = want * shape[d]
  end
  return true
end

local function in_place(t, f)
  if contiguous(t) then return f(t) end
  local c = core.clone(t)
  f(c)
  core.copy_(t, c)
end

-- t <- op over every rank's t (in place; returns t). "mean" is the sum divided
-- by size() in t's dtype (floats only).
function D.all_reduce(t, op)
  check_tensor("all_reduce", t)
  op = op or "sum"
  if not OPS[op] then fail("all_reduce", "op must be \"sum\", \"mean\" or \"max\", got %s", tostring(op)) end
  if op == "mean" and core.dtype(t) == "i32" then fail("all_reduce", "\"mean\" of an i32 tensor (use \"sum\")") end
  if not live() or mpi.size() == 1 then return t end
  in_place(t, function(c)
    core.synchronize() -- the staging queue reads what moonflow's queue wrote
    local r, m, w = mpi.all_reduce(c, op, chunk_bytes())
    D.last_timing = { read = r, mpi = m, write = w }
  end)
  return t
end

-- every rank's t <- root's t (in place; returns t)
function D.broadcast(t, root)
  check_tensor("broadcast", t)
  root = root or 0
  if math.type(root) ~= "integer" or root < 0 or root >= D.size() then
    fail("broadcast", "root must be a rank in 0..%d, got %s", D.size() - 1, tostring(root))
  end
  if not live() or mpi.size() == 1 then return t end
  in_place(t, function(c)
    core.synchronize()
    mpi.broadcast(c, root, chunk_bytes())
  end)
  return t
end

-- An exchange in pieces, overlapping other device work (app/dist_train.lua's
-- bucketed gradient all-reduce): bucket_begin(view) reads a contiguous view
-- to the host once the device has written it (it waits for moonflow's queue
-- up to now), bucket_reduce(b, op) all-reduces it and writes it back without
-- waiting, bucket_wait() waits for every write. Every rank begins and
-- reduces the same buckets in the same order.
function D.bucket_begin(view)
  check_tensor("bucket_begin", view)
  if not contiguous(view) then fail("bucket_begin", "the view must be contiguous") end
  core.synchronize()
  return mpi.bucket_begin(view, chunk_bytes())
end
function D.bucket_reduce(b, op) return mpi.bucket_reduce(b, op or "sum") end
function D.bucket_wait() if live() then mpi.bucket_wait() end end

-- root's string on every rank
function D.broadcast_string(s, root)
  if not live() or mpi.size() == 1 then return s end
  return mpi.broadcast_string(s, root or 0)
end

-- Ends the whole job: the message on stderr with this rank, then MPI_Abort
-- (every rank stops, none hangs in a collective). Without MPI: os.exit.
function D.abort(msg, code)
  code = code or 1
  io.stderr:write(("moonflow: rank %d of %d failed: %s\n"):format(D.rank(), D.size(), tostring(msg)))
  io.stderr:flush()
  if mpi then mpi.abort(code) end
  os.exit(code)
end

-- seconds on MPI's clock (os.clock's wall-time twin when MPI is absent)
function D.wtime() return mpi and mpi.wtime() or core.clock() end

-- rank > 0 prints nothing on stdout (fd 1 to /dev/null); stderr stays
function D.silence_stdout()
  if mpi then mpi.silence_stdout() end
end

function D.finalize()
  if mpi then mpi.finalize() end
end

return D
