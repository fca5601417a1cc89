-- A PyTorch copy of VelocityMLP loads moonflow's checkpoint with
-- load_state_dict(strict=True), model and EMA weights, and computes the
-- same outputs (tests/torch_load_check.py). Skipped when no Python with
-- torch is found (MOONFLOW_PYTHON, python3, /usr/bin/python3).
local mf = require "moonflow"
local J = require "moonflow.json"
local H = require "helpers"

local root = os.getenv("MOONFLOW_ROOT") or "."

local function python_with_torch()
  for _, py in ipairs { os.getenv("MOONFLOW_PYTHON") or "python3", "python3", "/usr/bin/python3" } do
    if os.execute(("%s -c 'import torch' >/dev/null 2>&1"):format(py)) then return py end
  end
end

local function list(t)
  if type(t) ~= "table" then return ("%.17g"):format(t) end
  local parts = {}
  for i, v in ipairs(t) do parts[i] = list(v) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

describe("PyTorch reads moonflow checkpoints", function()
  local py = python_with_torch()
  if not py then
    it("needs a Python with torch", function()
      print("\nio_torch_spec: skipped, no Python with torch (install python3-torch or set MOONFLOW_PYTHON)")
      pending("no Python with torch")
    end)
    return
  end

  it("loads model and EMA weights strictly into a PyTorch VelocityMLP, whose outputs match to 1e-5", function()
    local dir = H.tmpdir()
    local rngs = mf.Rngs(11)
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 3, num_classes = 3, use_dt = true, rngs = rngs }
    local opt = mf.optim.AdamW(net, { lr = 3e-2 })
    local ema = mf.optim.EMA(net, { decay = 0.5 })
    local g = mf.Generator(4)
    for _ = 1, 4 do
      local x = g:normal({ 8, 2 })
      local loss = (net(x, g:uniform({ 8 }), { y = mf.tensor({ 0, 1, 2, 3, 0, 1, 2, 3 }, { dtype = "i32" }) }) - x)
        :square():mean()
      opt:zero_grad(); loss:backward(); opt:step(); ema:update()
    end
    local ckpt = dir .. "/ck.safetensors"
    mf.io.save(ckpt, { model = net, ema = ema, optim = opt, step = 4 })
    local x = { { 0.5, -1.25 }, { 2, 0.125 }, { -0.75, 0.3 }, { 1.5, 1 } }
    local t, y, dt = { 0, 0.25, 0.6, 1 }, { 0, 2, 3, 1 }, { 0.1, 0, 0.5, 0.25 }
    local inputs = H.spit(dir .. "/in.json", ([[{"dim": 2, "hidden": 16, "depth": 3, "num_classes": 3,
      "use_dt": true, "x": %s, "t": %s, "y": %s, "dt": %s}]]):format(list(x), list(t), list(y), list(dt)))
    local p = assert(io.popen(("%s %q %q %q 2>&1"):format(py, root .. "/tests/torch_load_check.py", ckpt, inputs)))
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    local got = J.decode(out:match("{.*}") or out)
    local cond = { y = mf.tensor(y, { dtype = "i32" }), dt = mf.tensor(dt) }
    local want_model = net(mf.tensor(x), mf.tensor(t), cond):totable()
    local want_ema = ema.network(mf.tensor(x), mf.tensor(t), cond):totable()
    H.close(got.model, want_model, 1e-5, 1e-5, "model")
    H.close(got.ema, want_ema, 1e-5, 1e-5, "ema")
    -- the EMA really differs from the model, so both comparisons count
    assert.is_true(math.abs(want_model[1][1] - want_ema[1][1]) > 1e-3)
    os.execute(("rm -rf %q"):format(dir))
  end)
end)
