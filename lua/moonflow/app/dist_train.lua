-- Data-parallel training under mpirun (app/train.lua's hooks). Launched as
-- one of P processes (OMPI_COMM_WORLD_SIZE, PMI_SIZE), the trainer:
--   splits every global batch of B rows into P shards of B/P: rank r puts
--     the training streams (data, time, noise, label_dropout) in shard mode,
--     so it draws exactly rows r B/P + 1 .. (r + 1) B/P of what the
--     single-process run draws (Generator:shard), and every rank's
--     generators advance as the whole draw does;
--   averages the gradients with an all-reduce of each flat gradient buffer
--     per step (the mean over ranks of B/P-row means is the B-row mean), in
--     buckets that overlap the backward pass, and the loss the same way;
--   broadcasts the parameters, EMA weights and optimizer moments from rank 0
--     at the start and after a resume (every rank reads the checkpoint: the
--     run folder is on a file system all ranks share);
--   writes logs, checkpoints and pictures on rank 0 only (stdout of the
--     others goes to /dev/null);
--   samples evaluations sharded (rows of the noise and of every sampler draw
--     per rank) and gathers them by an all-reduce of zero-padded rows; the
--     energy distance is computed where the samples are then, on every rank;
--   ends the whole job (MPI_Abort) when any rank fails, with its message.
local D = require "moonflow.dist"
local core = require "moonflow.core"

local DT = {}
DT.__index = DT

-- the random streams a training step draws rows from
DT.streams = { "data", "time", "noise", "label_dropout" }

-- nil in a single process; else joins the job (before any tensor: each rank
-- picks its device by local rank)
function DT.from_env()
  if not D.launched() then return nil end
  D.init()
  local self = setmetatable({ rank = D.rank(), size = D.size() }, DT)
  self.main = self.rank == 0
  if self.size == 1 then return nil end
  if not self.main then D.silence_stdout() end
  return self
end

-- f(...) with any error ending every rank (never a rank left waiting in a
-- collective for one that died)
function DT:guard(f, ...)
  local res = table.pack(xpcall(f, function(e)
    if type(e) == "string" and not e:find("^moonflow") then return debug.traceback(e, 2) end
    return e
  end, ...))
  if not res[1] then D.abort(res[2], 1) end
  return table.unpack(res, 2, res.n)
end

-- rank r's rows of a global batch B: first (0-based), count
function DT:shard_of(B)
  if B % self.size ~= 0 then
    error(("moonflow.train: batch=%d does not split into %d equal shards (one per process); "
      .. "use a multiple of %d"):format(B, self.size, self.size), 0)
  end
  local b = B // self.size
  return self.rank * b, b
end

-- Puts the training streams in shard mode for global batch B; returns the
-- local batch.
function DT:shard_streams(rngs, B)
  local first, b = self:shard_of(B)
  for _, k in ipairs(DT.streams) do rngs[k]:shard(first, b, B) end
  return b
end

-- Takes the streams out of shard mode; returns a function that restores them.
function DT:pause_streams(rngs)
  local saved = {}
  for _, k in ipairs(DT.streams) do
    local s = rngs[k]:sharding()
    saved[k] = s
    rngs[k]:shard(nil)
  end
  return function()
    for k, s in pairs(saved) do rngs[k]:shard(s.first, s.count, s.total) end
  end
end

-- rank 0's parameters, EMA weights and optimizer moments on every rank
function DT:broadcast_state(modules, emas, opts)
  for _, m in ipairs(modules) do D.broadcast(m:flat_parameters(), 0) end
  for _, e in ipairs(emas) do D.broadcast(e.shadow, 0) end
  for _, o in ipairs(opts) do
    for _, k in ipairs { "m", "v", "buf" } do
      if o[k] then D.broadcast(o[k], 0) end
    end
  end
end

-- After backward: every optimizer's flat gradient buffer averaged over the
-- ranks (one all-reduce each), and the step's loss as the global mean.
function DT:reduce_step(loss, optimizers)
  for _, o in ipairs(optimizers) do D.all_reduce(o.grads, "mean") end
  return D.all_reduce(core.clone(loss:detach()), "mean")
end

-- Bucketed all-reduce overlapping the backward pass (docs/SCALING.md: it
-- saves ~20 % of a DiT step on 8 GPUs over 100 Gb/s). A bucket is a run of
-- whole parameters of about bucket_bytes in a flat gradient buffer; the
-- reverse pass reaches a parameter when its gradient is final, and when the
-- last parameter of a bucket is reached the bucket's staging read is
-- enqueued, and the bucket before it is all-reduced while the device runs
-- the rest of the backward pass. Every element is reduced once by the same
-- MPI call as without buckets: the results are the same bits.
-- It is on for GPU devices: on a CPU device (PoCL) MPI and the kernels share
-- the same cores, and the per-bucket waits only add stalls.
-- MOONFLOW_DIST_OVERLAP=1 or 0 forces it on or off; MOONFLOW_DIST_BUCKET_BYTES
-- sizes the buckets (default 4 MiB).
local overlap_env = os.getenv("MOONFLOW_DIST_OVERLAP")
DT.overlap = overlap_env == "1" or (overlap_env ~= "0" and nil) -- nil: by device type
DT.bucket_bytes = math.tointeger(tonumber(os.getenv("MOONFLOW_DIST_BUCKET_BYTES") or "")) or (4 << 20)

-- the buckets of an optimizer's flat gradient buffer, covering it exactly,
-- or nil when its parameters' gradients are not views into it
local function buckets_of(o, bytes)
  local m, flat = o.module, o.grads
  if type(m) ~= "table" or type(m.parameters) ~= "function" or flat == nil then return nil end
  local st, es = core.storage(flat), core.dtype(flat) == "f64" and 8 or 4
  local items = {}
  for _, p in ipairs(m:parameters()) do
    local g = p.grad
    if g == nil or core.storage(g) ~= st then return nil end
    local _, n, _, off = core.info(g)
    items[#items + 1] = { p = p, off = off, n = n }
  end
  table.sort(items, function(a, b) return a.off < b.off end)
  local _, total, _, base = core.info(flat)
  local list, cur, stop = {}, nil, base
  for _, it in ipairs(items) do
    if it.off < stop or it.off + it.n > base + total then return nil end -- shared or foreign storage
    if not cur or (it.off - cur.first) * es >= bytes then
      cur = { first = list[1] and it.off or base, params = {} }
      list[#list + 1] = cur
    end
    cur.params[#cur.params + 1] = it.p
    stop = it.off + it.n
  end
  if #list == 0 then return nil end
  -- bucket k spans up to bucket k + 1, the last to the buffer's end: the
  -- buckets cover the buffer (alignment padding included) exactly once
  for k, b in ipairs(list) do
    b.last = list[k + 1] and list[k + 1].first or base + total
    b.view = core.narrow(flat, 1, b.first - base + 1, b.last - b.first)
  end
  return list
end
DT.buckets_of = buckets_of

-- loss:backward() with the gradients of every optimizer averaged over the
-- ranks (bucketed, overlapping the backward pass when DT.overlap); returns
-- the step's loss as the global mean.
function DT:backward(loss, optimizers)
  local all = {}
  local on = DT.overlap
  if on == nil then on = core.device().type == "gpu" end
  for _, o in ipairs(optimizers) do
    local bs = on and buckets_of(o, DT.bucket_bytes)
    if not bs then
      all = nil
      break
    end
    for _, b in ipairs(bs) do all[#all + 1] = b end
  end
  if not all then
    loss:backward()
    return self:reduce_step(loss, optimizers)
  end
  local pending, begun = nil, {}
  local function ready(b)
    if pending then D.bucket_reduce(pending, "mean") end -- beside the device's later backward kernels
    pending = D.bucket_begin(b.view)
    begun[#begun + 1] = pending
    b.done = true
  end
  -- For the reverse pass each parameter becomes a node whose rule does what
  -- the tape does for a leaf (grad += g) and then counts its bucket down. Not
  -- a leaf meanwhile, so that fused rules return its cotangent instead of
  -- adding into its gradient themselves (nn/fused.lua's grad_sink): the
  -- same sum, and the node sees it.
  local marked = {}
  for _, b in ipairs(all) do
    b.left, b.done = #b.params, false
    for _, p in ipairs(b.params) do
      p._node = { op = { name = "dist_gradient_ready", vjp = function(_, g)
        core.binary_("add", p.grad, g)
        b.left = b.left - 1
        if b.left == 0 then ready(b) end
      end }, ctx = {}, args = {}, n = 0 }
      p._leaf = false
      marked[#marked + 1] = p
    end
  end
  local ok, err = pcall(loss.backward, loss)
  for _, p in ipairs(marked) do p._node, p._leaf = nil, true end
  if not ok then error(err, 0) end
  local early = #begun -- buckets begun during the reverse pass
  self.last_overlap = { buckets = #all, during_backward = early }
  if pending then D.bucket_reduce(pending, "mean") end
  -- buckets the pass never finished (parameters without a gradient this step)
  for _, b in ipairs(all) do
    if not b.done then
      local h = D.bucket_begin(b.view)
      D.bucket_reduce(h, "mean")
      begun[#begun + 1] = h
    end
  end
  D.bucket_wait()
  return D.all_reduce(core.clone(loss:detach()), "mean")
end

-- n rows drawn by fn(count) on each rank, the rows of rank r being
-- floor(r n / P) + 1 .. floor((r + 1) n / P), gathered on every rank: a zero
-- tensor with this rank's rows in place, summed over ranks (x + 0 = x exactly).
-- Draws of generator g inside fn are that rank's rows of the whole draws.
function DT:sharded_rows(n, g, fn)
  local first = self.rank * n // self.size
  local count = (self.rank + 1) * n // self.size - first
  local saved = g:sharding()
  g:shard(first, count, n)
  local ok, part = pcall(fn, count)
  if saved then g:shard(saved.first, saved.count, saved.total) else g:shard(nil) end
  if not ok then error(part, 0) end
  local shape = part:shape()
  shape[1] = n
  local all = core.full(shape, 0, core.dtype(part))
  if count > 0 then core.copy_(core.narrow(all, 1, first + 1, count), part) end
  return D.all_reduce(all, "sum")
end

function DT:barrier() D.barrier() end

return DT
