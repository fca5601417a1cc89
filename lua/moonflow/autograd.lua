-- A small tape. An op is a table {name, forward, vjp, jvp}:
--   forward(ctx, ...) -> out           runs kernels, may stash values in ctx
--   vjp(ctx, g)       -> g_1, g_2, ... cotangents of the tensor inputs
--   jvp(ctx, t_1, ...) -> t_out        tangent of out (nil inputs are zero)
-- Reverse mode records a node on the output when an input needs a gradient;
-- forward mode carries `_tangent` on tensors inside `jvp`. Rules run with
-- recording off: tangents and cotangents are constants to the tape.
local core = require "moonflow.core"

local A = {}

local grad_on = true -- recording enabled
local jvp_depth = 0 -- > 0 while tangents may be present
local is_tensor = function(x) return getmetatable(x) == core.metatable end
A.is_tensor = is_tensor

local function needs_grad(t)
  return t._node ~= nil or t._leaf == true
end

-- Runs fn with recording off.
function A.no_grad(fn, ...)
  local prev = grad_on
  grad_on = false
  local r = table.pack(pcall(fn, ...))
  grad_on = prev
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

function A.grad_enabled() return grad_on end

local no_grad = A.no_grad

-- Applies op to args (tensors and plain values).
function A.apply(op, ...)
  if not grad_on and jvp_depth == 0 then
    return op.forward({}, ...)
  end
  local n = select("#", ...)
  local args = { ... }
  local rec, tan = false, false
  for i = 1, n do
    local a = args[i]
    if is_tensor(a) then
      if grad_on and not rec and needs_grad(a) then rec = true end
      if jvp_depth > 0 and a._tangent ~= nil then tan = true end
    end
  end
  local ctx = {}
  local out
  if rec then
    out = op.forward(ctx, ...)
  else
    out = no_grad(op.forward, ctx, ...)
  end
  if tan then
    local ts = {}
    for i = 1, n do
      local a = args[i]
      ts[i] = is_tensor(a) and a._tangent or nil
    end
    out._tangent = no_grad(op.jvp, ctx, table.unpack(ts, 1, n))
  end
  if rec then
    out._node = { op = op, ctx = ctx, args = args, n = n }
  end
  return out
end

-- Sums g down to `shape` (undoing broadcasting).
function A.sum_to(g, shape)
  local gs = g:shape()
  if #gs == #shape then
    local same = true
    for i = 1, #gs do if gs[i] ~= shape[i] then same = false break end end
    if same then return g end
  end
  local lead = #gs - #shape
  local dims = {}
  for i = 1, #gs do
    local j = i - lead
    if j < 1 or (shape[j] == 1 and gs[i] ~= 1) then dims[#dims + 1] = i end
  end
  local s = #dims > 0 and core.reduce("sum", g, dims, true) or g
  return core.reshape(s, shape)
end

-- Reverse pass from `root` with output gradient `g` (ones for a scalar).
function A.backward(root, g)
  if not needs_grad(root) then
    error("moonflow.backward: the tensor does not require grad (nothing recorded it)", 2)
  end
  if g == nil then
    if core.numel(root) ~= 1 then
      error(("moonflow.backward: a gradient is needed for a non-scalar output of %d elements"):format(core.numel(root)), 2)
    end
    g = core.full(root:shape(), 1, core.dtype(root))
  end
  -- topological order by depth-first search over nodes
  local order, seen = {}, {}
  local function visit(t)
    if seen[t] then return end
    seen[t] = true
    local node = t._node
    if node then
      for i = 1, node.n do
        local a = node.args[i]
        if is_tensor(a) and needs_grad(a) then visit(a) end
      end
    end
    order[#order + 1] = t
  end
  visit(root)
  local grads = { [root] = g }
  no_grad(function()
    for k = #order, 1, -1 do
      local t = order[k]
      local gt = grads[t]
      grads[t] = nil
      local node = t._node
      if gt ~= nil and node then
        -- ctx.needs[i]: whether argument i wants a cotangent (rules may skip work)
        local needs = {}
        for i = 1, node.n do
          local a = node.args[i]
          needs[i] = is_tensor(a) and needs_grad(a)
        end
        node.ctx.needs = needs
        local gin = { node.op.vjp(node.ctx, gt) }
        local ti = 0
        for i = 1, node.n do
          local a = node.args[i]
          if is_tensor(a) then
            ti = ti + 1
            local gi = gin[ti]
            if gi ~= nil and needs_grad(a) then
              local prev = grads[a]
              grads[a] = prev and core.binary("add", prev, gi) or gi
            end
          end
        end
      elseif gt ~= nil and t._leaf then
        local acc = t.grad
        if acc then
          core.binary_("add", acc, gt)
        else
          t.grad = core.clone(gt)
        end
      end
    end
  end)
end

-- Forward mode: outputs and their tangents for fn(primals...) in one pass.
-- primals and tangents are lists (or single tensors). Gradients flow through
-- the primal outputs when fn uses tensors that require grad.
function A.jvp(fn, primals, tangents)
  local single = is_tensor(primals)
  if single then primals, tangents = { primals }, { tangents } end
  if #primals ~= #tangents then
    error(("moonflow.autograd.jvp: %d primals but %d tangents"):format(#primals, #tangents), 2)
  end
  local alias = A.alias
  local ins = {}
  for i, p in ipairs(primals) do
    local t = tangents[i]
    if not (is_tensor(p) and is_tensor(t)) then
      error(("moonflow.autograd.jvp: primal and tangent %d must be tensors"):format(i), 2)
    end
    local ps, ts = p:shape(), t:shape()
    if table.concat(ps, ",") ~= table.concat(ts, ",") then
      error(("moonflow.autograd.jvp: primal %d has shape {%s} but its tangent {%s}"):format(
        i, table.concat(ps, ", "), table.concat(ts, ", ")), 2)
    end
    ins[i] = alias(p) -- a fresh handle, so the caller's tensor carries no tangent
    ins[i]._tangent = t
  end
  jvp_depth = jvp_depth + 1
  local ok, out = pcall(fn, table.unpack(ins, 1, #ins))
  jvp_depth = jvp_depth - 1
  if not ok then error(out, 0) end
  local function split(o)
    if not is_tensor(o) then error("moonflow.autograd.jvp: fn must return tensors", 3) end
    local t = o._tangent
    o._tangent = nil
    if t == nil then t = core.full(o:shape(), 0, core.dtype(o)) end
    return t
  end
  if is_tensor(out) then
    local t = split(out)
    return out, t
  end
  local outs, touts = {}, {}
  for i, o in ipairs(out) do
    touts[i] = split(o)
    outs[i] = o
  end
  return outs, touts
end

return A
