-- Gradient checks in float64 against central finite differences, both modes.
--   reverse: leaves x_i, y = fn(x...), y:backward(w) for a fixed random w;
--            x_i.grad vs (s(x + h e_j) - s(x - h e_j)) / 2h, s(x) = sum(w * fn(x)).
--   forward: mf.autograd.jvp(fn, xs, vs) -> y, ty;
--            ty vs (fn(x + h v) - fn(x - h v)) / 2h elementwise.
local mf = require "moonflow"
local H = require "helpers"

local G = {}

local function prod(s) local n = 1; for _, v in ipairs(s) do n = n * v end; return n end

-- deterministic values in [lo, hi), kept at least `gap` away from each of `avoid`
local function values(n, seed, lo, hi, avoid, gap)
  local raw = H.flatten(H.rand_table({ n }, seed, lo, hi))
  if avoid then
    for i, v in ipairs(raw) do
      for _, a in ipairs(avoid) do
        if math.abs(v - a) < gap then v = a + (v >= a and gap or -gap) end
      end
      raw[i] = v
    end
  end
  return raw
end
G.values = values

local function make(flat, shape)
  local t = mf.tensor(#flat > 0 and flat or { 0 }, { dtype = "f64" })
  return t:reshape(shape):detach()
end

-- spec: {shape, lo=, hi=, avoid=, gap=} ; returns flat values
local function input_values(spec, seed)
  return values(prod(spec[1]), seed, spec.lo or -1, spec.hi or 1, spec.avoid, spec.gap or 0.05)
end

-- G.check(name, fn, specs, opts): opts.h (1e-6), opts.rtol (1e-6), opts.atol (1e-8),
-- opts.seed. fn takes tensors (one per spec) and returns one tensor.
function G.check(name, fn, specs, opts)
  opts = opts or {}
  local h, rtol, atol = opts.h or 1e-6, opts.rtol or 1e-6, opts.atol or 1e-8
  local seed = opts.seed or 11
  local xs = {}
  for i, s in ipairs(specs) do xs[i] = input_values(s, seed + 7 * i) end
  local function eval(vals)
    local ts = {}
    for i, s in ipairs(specs) do ts[i] = make(vals[i], s[1]) end
    return mf.no_grad(fn, table.unpack(ts, 1, #specs))
  end
  local y0 = eval(xs)
  local yshape = y0:shape()
  local w = values(prod(yshape), seed + 1000, -1, 1)
  local function s_of(vals)
    local y = eval(vals):tolist()
    local s = 0
    for k = 1, #y do s = s + w[k] * y[k] end
    return s
  end
  local function shifted(i, dir) -- copy of xs with input i moved along dir (list) by +-h
    local out = {}
    for k, v in ipairs(xs) do out[k] = v end
    return function(sign)
      local c = {}
      for j, v in ipairs(xs[i]) do c[j] = v + sign * h * (dir[j] or 0) end
      out[i] = c
      return out
    end
  end

  -- reverse mode
  local leaves = {}
  for i, s in ipairs(specs) do leaves[i] = make(xs[i], s[1]):requires_grad() end
  local y = fn(table.unpack(leaves, 1, #specs))
  assert(y:dtype() == "f64", name .. ": output is not f64")
  y:backward(make(w, yshape))
  for i = 1, #specs do
    if not specs[i].nograd then
      local g = leaves[i].grad
      assert(g ~= nil, ("%s: input %d got no gradient"):format(name, i))
      local got = g:tolist()
      local want = {}
      for j = 1, #xs[i] do
        local e = {}
        e[j] = 1
        local sh = shifted(i, e)
        local sp = s_of(sh(1))
        local sm = s_of(sh(-1))
        want[j] = (sp - sm) / (2 * h)
      end
      H.close(got, want, rtol, atol, ("%s: vjp of input %d"):format(name, i))
    end
  end

  -- forward mode: every input gets a tangent (nograd inputs a zero one)
  local vs, ts, ps = {}, {}, {}
  for i, s in ipairs(specs) do
    vs[i] = s.nograd and H.map(function() return 0 end, xs[i]) or values(#xs[i], seed + 31 * i, -1, 1)
    ts[i] = make(vs[i], s[1])
    ps[i] = make(xs[i], s[1])
  end
  local yo, ty = mf.autograd.jvp(fn, ps, ts)
  if type(yo) == "table" and not mf.is_tensor(yo) then yo, ty = yo[1], ty[1] end
  H.close(yo:tolist(), y0:tolist(), 1e-12, 1e-12, name .. ": jvp primal")
  local tsh = ty:shape()
  if table.concat(tsh, ",") ~= table.concat(yshape, ",") then
    error(("%s: tangent shape {%s}, output {%s}"):format(name, table.concat(tsh, ", "), table.concat(yshape, ", ")), 2)
  end
  local vp, vm = {}, {}
  for i = 1, #xs do
    vp[i], vm[i] = {}, {}
    for j, v in ipairs(xs[i]) do vp[i][j] = v + h * vs[i][j]; vm[i][j] = v - h * vs[i][j] end
  end
  local fp, fm = eval(vp):tolist(), eval(vm):tolist()
  local want = {}
  for k = 1, #fp do want[k] = (fp[k] - fm[k]) / (2 * h) end
  H.close(ty:tolist(), want, rtol, atol, name .. ": jvp")
  return true
end

-- Every parameter tensor of a network (f64) in reverse mode: s_of() -> a
-- scalar tensor; its gradient at the first, middle and last entry of each
-- tensor in the flat buffer against central differences. -> entries checked
function G.check_parameters(net, s_of, opts)
  opts = opts or {}
  local h = opts.h or 1e-6
  local flat = net:flat_parameters()
  net:zero_grad()
  s_of():backward()
  local base, grads = flat:totable(), net:flat_gradients():totable()
  local function set(vals) mf.no_grad(function() flat:copy_(mf.tensor(vals, { dtype = flat:dtype() })) end) end
  local checked = 0
  for _, it in ipairs(net._layout) do
    for _, j in ipairs { 0, it.numel // 2, it.numel - 1 } do
      local i = it.offset + j + 1
      local v = { table.unpack(base) }
      v[i] = base[i] + h
      set(v)
      local sp = mf.no_grad(s_of):item()
      v[i] = base[i] - h
      set(v)
      local sm = mf.no_grad(s_of):item()
      H.close({ grads[i] }, { (sp - sm) / (2 * h) }, opts.rtol or 1e-6, opts.atol or 1e-8,
        ("d/d %s[%d]"):format(it.name, j))
      checked = checked + 1
    end
    set(base)
  end
  return checked
end

return G
