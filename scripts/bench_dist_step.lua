-- One data-parallel training step, timed in its parts, in 1 or P processes:
--   [mpirun -np P] lua5.4 scripts/bench_dist_step.lua [mlp|dit] [global_batch] [steps] [after|overlap]
-- mlp: the two_moons_sit network (VelocityMLP hidden 256, depth 4) on 2-D
-- points; dit: the fashion DiT (input 28, patch 4, hidden 256, depth 6,
-- heads 4, 10 classes) on {B, 1, 28, 28} noise images. Each rank takes
-- global_batch / P rows; a step is forward + backward (compute), then the
-- all-reduce of the flat gradient buffer, then AdamW; with "overlap" the
-- all-reduce goes in 4 MiB buckets during the backward pass (the trainer's
-- way, app/dist_train.lua), and compute + all-reduce are timed together.
-- Rank 0 prints the median and fastest step and its parts (the first step
-- is a warm-up).
local mf = require "moonflow"
local D = mf.dist
D.init()
local kind, B, steps = arg[1] or "mlp", tonumber(arg[2]) or 512, tonumber(arg[3]) or 20
local overlap = arg[4] == "overlap"
local DT = require "moonflow.app.dist_train"
local dt = setmetatable({ rank = D.rank(), size = D.size(), main = D.rank() == 0 }, DT)
local P, rank = D.size(), D.rank()
local b = B // P
local rngs = mf.Rngs(0)
local net, x, y
if kind == "dit" then
  net = mf.nn.DiT { input_size = 28, patch_size = 4, in_channels = 1, hidden_size = 256, depth = 6, num_heads = 4,
    num_classes = 10, rngs = rngs }
  x = rngs.data:normal({ b, 1, 28, 28 })
  y = rngs.data:randint({ b }, 0, 10)
else
  net = mf.nn.VelocityMLP { dim = 2, hidden = 256, depth = 4, rngs = rngs }
  x = rngs.data:normal({ b, 2 })
end
D.broadcast(net:flat_parameters(), 0)
local sit = mf.interfaces.SiT { network = net, rngs = rngs }
local opt = mf.optim.AdamW(net, { lr = 1e-4 })
local comp, red, tot = {}, {}, {}
for s = 0, steps do
  mf.synchronize()
  D.barrier()
  local t0 = D.wtime()
  local loss = sit:loss(x, y and { y = y } or nil).loss:mean()
  opt:zero_grad()
  local t1, t2
  if overlap and P > 1 then
    dt:backward(loss, { opt })
    t1 = D.wtime()
    t2 = t1
  else
    loss:backward()
    mf.synchronize()
    t1 = D.wtime()
    D.all_reduce(opt.grads, "mean")
    t2 = D.wtime()
  end
  opt:step()
  mf.synchronize()
  local t3 = D.wtime()
  if s > 0 then comp[s], red[s], tot[s] = t1 - t0, t2 - t1, t3 - t0 end
end
local function median(xs)
  local c = { table.unpack(xs) }
  table.sort(c)
  return c[(#c + 1) // 2]
end
local best = 1
for i = 2, #tot do if tot[i] < tot[best] then best = i end end
if rank == 0 then
  print(("%s, %d parameters (%.1f MB of f32 gradients), global batch %d, %d process(es), %s%s"):format(kind,
    opt.grads:numel(), opt.grads:numel() * 4 / 1e6, B, P, mf.device().name,
    overlap and ", all-reduce in buckets during backward (counted as compute)" or ""))
  print(("step: median %.2f ms (compute %.2f, all-reduce %.2f); fastest %.2f ms (compute %.2f, all-reduce %.2f)"):format(
    median(tot) * 1e3, median(comp) * 1e3, median(red) * 1e3, tot[best] * 1e3, comp[best] * 1e3, red[best] * 1e3))
end
D.barrier()
