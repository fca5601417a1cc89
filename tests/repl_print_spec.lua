-- What the REPL shows: objects print readably, wide tensors wrap at the
-- terminal width, Tab completes names, help() documents the API.
local mf = require "moonflow"
local C = require "child_process"

describe("printing objects", function()
  it("devices, generators, optimizers, samplers and interfaces say what they are", function()
    local d = mf.device()
    assert.equal(("Device(%s, %s, %s, fp64=%s, %.1f GiB)"):format(d.name, d.type, d.platform, tostring(d.fp64),
      d.global_memory / 2 ^ 30), tostring(d))
    assert.truthy(tostring(mf.devices()[1]):find("^Device%(0: "))
    local g = mf.Generator(3)
    g:normal { 8 }
    assert.equal("Generator(seed=3, offset=2)", tostring(g))
    local rngs = mf.Rngs(1)
    local _ = rngs.noise, rngs.params
    assert.equal("Rngs(seed=1, streams: noise, params)", tostring(rngs))
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 8, depth = 1, rngs = mf.Rngs(0) }
    assert.equal("AdamW(lr=0.002, step=0, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0)",
      tostring(mf.optim.AdamW(net, { lr = 2e-3, weight_decay = 0 })))
    assert.equal("SGD(lr=0.1, step=0, momentum=0.9, dampening=0, weight_decay=0, nesterov=false)",
      tostring(mf.optim.SGD(net, { lr = 0.1, momentum = 0.9 })))
    assert.equal("EMA(decay=0.99, warmup=false, updates=0)", tostring(mf.optim.EMA(net, { decay = 0.99 })))
    assert.equal("Euler(num_sampling_steps=5, sampling_time_dist=uniform)",
      tostring(mf.samplers.Euler { num_sampling_steps = 5 }))
    assert.equal("EDM(num_sampling_steps=50, sampling_time_dist=exp)", tostring(mf.samplers.EDM {}))
    assert.equal("SiT(train_time_dist_type=uniform)", tostring(mf.interfaces.SiT { network = net }))
  end)
end)

describe("wide tensors", function()
  local function show(code, env)
    local out, err, ok = C.run("local mf = require 'moonflow'; print(" .. code .. ")", env)
    assert(ok, err)
    return out
  end

  it("wrap rows at COLUMNS, continuing under the first entry", function()
    assert.equal(table.concat({
      "tensor([ 1.,  2.,  3.,  4.,  5.,  6.,",
      "         7.,  8.,  9., 10., 11., 12.,",
      "        13., 14.], shape={14}, dtype=f32)", "" }, "\n"), show("mf.arange(1, 15)", { COLUMNS = "40" }))
    assert.equal(table.concat({
      "tensor([[ 1.,  2.,  3.,  4.,  5.,  6.,",
      "          7.,  8.,  9., 10.],",
      "        [11., 12., 13., 14., 15., 16.,",
      "         17., 18., 19., 20.]], shape={2, 10}, dtype=f32)", "" }, "\n"),
      show("mf.arange(1, 21):reshape{2, 10}", { COLUMNS = "40" }))
  end)

  it("wrap at 80 columns when there is no terminal and no COLUMNS", function()
    local out = show("mf.arange(100, 130)", { COLUMNS = "" })
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(3, #lines)
    -- 7 + 1 + 14 entries of "100.," with spaces: 7 + 1 + 14 * 6 - 1 = 77 <= 80
    assert.equal("tensor([100., 101., 102., 103., 104., 105., 106., 107., 108., 109., 110., 111.,", lines[1])
    assert.is_true(#lines[1] <= 80 and #lines[2] <= 80)
  end)
end)

describe("REPL completion and help", function()
  local R = require "moonflow.app.repl"

  it("completes fields of mf, of nested tables, and methods after ':'", function()
    _G.mf = mf -- as the REPL has it
    assert.same({ "mf.rand", "mf.randint", "mf.randn" }, R.complete("mf.ra"))
    assert.same({ "mf.samplers" }, R.complete("mf.sampl")) -- a submodule not loaded yet
    assert.same({ "mf.nn.LayerNorm", "mf.nn.Linear" }, R.complete("mf.nn.L"))
    _G.__x = mf.ones { 2 }
    assert.same({ "__x:std", "__x:storage", "__x:storage_offset", "__x:strides" }, R.complete("__x:st"))
    assert.same({ "__x:select" }, R.complete("__x:sel"))
    _G.__x = nil
    assert.same({}, R.complete("mf.nothing.x"))
    assert.same({ "mf" }, R.complete("mf"))
  end)

  it("help(value) prints the entry, help() the index", function()
    assert.equal("mf.randn(shape[, opts])\n  Standard normal (Box-Muller on Philox); opts {mean, std, dtype = \"f64\"} or \"f64\".",
      R.help_text(mf.randn))
    assert.truthy(R.help_text(mf.optim.AdamW):find("^mf%.optim%.AdamW%(net, {lr = 1e%-3"))
    assert.truthy(R.help_text("select"):find("^t:select%(dim, i%)"))
    assert.truthy(R.help_text():find("mf.nn.Linear", 1, true))
    assert.truthy(R.help_text(print):find("^no help for"))
  end)

  it("documents every public name of mf, nn, interfaces, samplers, rf, io, optim, distill and dist", function()
    local docs = require "moonflow.app.docs"
    local missing = {}
    for _, m in ipairs { "", "nn", "interfaces", "samplers", "rf", "io", "optim", "distill", "dist" } do
      local t = m == "" and mf or mf[m]
      local keys = {}
      for k in pairs(t) do keys[#keys + 1] = k end
      if m == "" then for k in pairs(getmetatable(mf).__submodules) do keys[#keys + 1] = k end end
      for _, k in ipairs(keys) do
        local name = (m == "" and "mf." or "mf." .. m .. ".") .. k
        if type(k) == "string" and k:sub(1, 1) ~= "_" and not docs[name] then missing[#missing + 1] = name end
      end
    end
    table.sort(missing)
    assert.same({}, missing)
    for name, text in pairs(docs) do
      assert.truthy(text:find("\n  ", 1, true), name .. ": signature, then the paragraph")
    end
  end)
end)
