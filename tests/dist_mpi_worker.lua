-- Run by tests/dist_mpi_spec.lua under mpirun: every rank checks all_reduce
-- and broadcast against values computed in Lua doubles and writes one line
-- per check to PREFIX..RANK (PREFIX = arg[1]), "rank R ok NAME" or
-- "rank R FAIL NAME: why". The values are
-- small dyadic numbers, so every sum, mean and max is exact in f32 too.
local mf = require "moonflow"
local D = mf.dist
D.init()
local rank, P = D.rank(), D.size()

-- each rank writes its own file (arg[1] .. rank): lines of two processes
-- sharing one pipe can interleave
local out = assert(io.open((arg[1] or "/tmp/dist_mpi_worker_") .. rank, "w"))
local function report(name, ok, why)
  out:write(("rank %d %s %s%s\n"):format(rank, ok and "ok" or "FAIL", name, ok and "" or (": " .. why)))
  out:flush()
end

-- element i (1-based) of rank r's tensor
local function value(r, i, dt)
  if dt == "i32" then return (i * 7 + r * 13) % 23 - 11 end
  return ((i * 5 + r * 3) % 17 - 8) * 0.25
end

local function expected(op, i, dt)
  local s, m = 0, -math.huge
  for r = 0, P - 1 do
    local v = value(r, i, dt)
    s, m = s + v, math.max(m, v)
  end
  if op == "sum" then return s end
  if op == "mean" then return s / P end
  return m
end

local function check(name, t, want)
  local got = mf.core.flat(t:contiguous())
  if #got ~= #want then return report(name, false, ("%d values, expected %d"):format(#got, #want)) end
  for i = 1, #want do
    if got[i] ~= want[i] then
      return report(name, false, ("element %d is %.17g, expected %.17g"):format(i, got[i], want[i]))
    end
  end
  report(name, true)
end

local function filled(n, dt, r)
  local v = {}
  for i = 1, n do v[i] = value(r, i, dt) end
  return mf.tensor(v, { dtype = dt })
end

-- sizes: one element, a few, and more than one staging chunk of every chunk size below
for _, chunk in ipairs { 4 << 20, 8, 12, 4 } do
  D.chunk_bytes = chunk
  for _, dt in ipairs { "f32", "f64", "i32" } do
    for _, n in ipairs { 1, 7, 1000 } do
      for _, op in ipairs { "sum", "mean", "max" } do
        if not (op == "mean" and dt == "i32") then
          local t = filled(n, dt, rank)
          local want = {}
          for i = 1, n do want[i] = expected(op, i, dt) end
          local back = D.all_reduce(t, op)
          check(("all_reduce %s %s n=%d chunk=%d"):format(op, dt, n, chunk), t, want)
          if back ~= t then report("all_reduce returns t", false, "another value") end
        end
      end
      -- broadcast from the last rank
      local t = filled(n, dt, rank)
      local want = {}
      for i = 1, n do want[i] = value(P - 1, i, dt) end
      D.broadcast(t, P - 1)
      check(("broadcast %s n=%d chunk=%d"):format(dt, n, chunk), t, want)
    end
  end
end

-- a non-contiguous view (a transpose) and a narrowed view: reduced in place,
-- the rest of the storage untouched
D.chunk_bytes = 8
do
  local base = filled(12, "f32", rank)
  local m = base:reshape({ 3, 4 })
  local tv = m:transpose(1, 2) -- {4, 3}, strided
  D.all_reduce(tv, "sum")
  local want = {}
  for i = 1, 12 do want[i] = expected("sum", i, "f32") end
  check("all_reduce of a transposed view", base, want)
  local b2 = filled(10, "f64", rank)
  D.all_reduce(b2:narrow(1, 3, 5), "max")
  want = {}
  for i = 1, 10 do want[i] = (i >= 3 and i <= 7) and expected("max", i, "f64") or value(rank, i, "f64") end
  check("all_reduce of a narrowed view", b2, want)
end

-- gradients of a module: the flat buffer all-reduced to the mean
do
  local net = mf.nn.Linear(3, 2, { rngs = mf.Rngs(1) })
  local x = mf.tensor({ { 1, 2, 3 }, { -1, 0.5, 2 } }):narrow(1, rank % 2 + 1, 1)
  net(x):sum():backward()
  local g = net:flat_gradients()
  local mine = mf.core.flat(g)
  -- every rank's gradients, exchanged by a sum of zero-padded copies
  local all = mf.zeros({ P, #mine })
  mf.core.copy_(all:narrow(1, rank + 1, 1), g:reshape({ 1, #mine }))
  D.all_reduce(all, "sum")
  local rows = all:totable()
  local want = {}
  for j = 1, #mine do
    local s = 0
    for r = 1, P do s = s + rows[r][j] end
    want[j] = s / P
  end
  D.all_reduce(g, "mean")
  local got = mf.core.flat(g)
  local ok, why = true, nil
  for j = 1, #want do
    -- the f32 mean of P f32 values against its double: within one rounding
    if math.abs(got[j] - want[j]) > 1.2e-7 * math.abs(want[j]) + 1e-30 then
      ok, why = false, ("element %d is %.9g, expected %.9g"):format(j, got[j], want[j])
    end
  end
  report("flat gradient mean", ok, why)
end

-- the bucketed all-reduce that overlaps the backward pass gives the bits of
-- backward + one all-reduce, and its buckets cover the flat buffer
do
  local DT = require "moonflow.app.dist_train"
  local dt = setmetatable({ rank = rank, size = P, main = rank == 0 }, DT)
  local function run(overlap)
    local rngs = mf.Rngs(3)
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 64, depth = 3, rngs = rngs }
    local opt = mf.optim.AdamW(net, { lr = 1e-3 })
    local sit = mf.interfaces.SiT { network = net, rngs = rngs }
    local x = rngs.data:normal({ 8, 2 }, { rows = { 8 * rank, 16 } })
    for _, k in ipairs { "time", "noise" } do rngs[k]:shard(8 * rank, 8, 16) end
    local loss = sit:loss(x).loss:mean()
    opt:zero_grad()
    DT.overlap, DT.bucket_bytes = overlap, 4096
    local l = dt:backward(loss, { opt })
    return mf.core.flat(opt.grads), l:item(), opt
  end
  local g0, l0 = run(false)
  local g1, l1, opt = run(true)
  local same = #g0 == #g1 and l0 == l1
  for i = 1, #g0 do if g0[i] ~= g1[i] then same = false end end
  report("bucketed all-reduce: the same bits", same, ("loss %.9g vs %.9g"):format(l0, l1))
  local bs = DT.buckets_of(opt, 4096)
  local covered, ok = 0, bs ~= nil and #bs > 3
  for _, b in ipairs(bs or {}) do
    if b.first ~= covered then ok = false end
    covered = b.last
  end
  ok = ok and covered == #g0 and dt.last_overlap.during_backward == #bs
  report("buckets cover the buffer and all begin during backward", ok,
    ("%d buckets, %d begun during backward, %d of %d covered"):format(bs and #bs or 0,
      dt.last_overlap.during_backward, covered, #g0))
  DT.overlap, DT.bucket_bytes = true, 4 << 20
end

-- one machine: the local ranks are the ranks
report("local_rank and local_size", D.local_rank() == rank and D.local_size() == P and P == 2,
  ("local rank %d of %d, rank %d of %d"):format(D.local_rank(), D.local_size(), rank, P))

D.barrier()
report("done", true)
out:close()
