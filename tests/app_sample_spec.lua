-- `moonflow sample`: every sampler on every checkpoint kind, or a clear
-- "does not apply"; data found from any folder; samples saved as arrays.
local P = require "app_proc"

local tiny = "batch=64 network.hidden=16 network.depth=2 eval_n=100 log_every=10 checkpoint_every=10 steps=10 "
  .. "evals.1.num_sampling_steps=4"
local configs = {
  SiT = "scripts/configs/two_moons_sit.lua",
  EDM = "scripts/configs/eight_gaussians_edm.lua",
  MeanFlow = "scripts/configs/checkerboard_meanflow.lua",
}
-- the samplers each interface serves; the others must say why not
local serves = {
  SiT = { Euler = true, Heun = true, EulerMaruyama = true },
  EDM = { Euler = true, Heun = true, EDM = true, EulerMaruyama = true },
  MeanFlow = { EulerJump = true, Euler = true, Heun = true, EulerMaruyama = true },
}
local why = {
  EDM = "the EDM sampler applies to EDM checkpoints (the sigma path x + sigma n)",
  EulerJump = "EulerJump applies to MeanFlow checkpoints (the average velocity u(x, t, r))",
}

-- a little-endian f32 .npy of the rows
local function npy(path, rows)
  local dict = ("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }"):format(#rows, #rows[1])
  local pad = 64 - (10 + #dict + 1) % 64
  local parts = { "\147NUMPY\1\0", string.pack("<I2", #dict + pad + 1), dict, (" "):rep(pad), "\n" }
  for _, r in ipairs(rows) do for _, v in ipairs(r) do parts[#parts + 1] = string.pack("<f", v) end end
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(parts))
  f:close()
end

describe("moonflow sample", function()
  local base = P.scratch("sample")
  setup(function() assert.are.equal(0, select(3, P.run(("mkdir -p %q"):format(base)))) end)
  teardown(function() P.run(("rm -rf %q*"):format(base)) end)

  for _, kind in ipairs { "SiT", "EDM", "MeanFlow" } do
    it("serves every sampler that applies to a " .. kind .. " checkpoint and names the others", function()
      local dir = base .. "/" .. kind
      local _, err, code = P.moonflow(("train %s %s out=%s"):format(configs[kind], tiny, dir))
      assert.are.equal(0, code, err)
      for _, s in ipairs { "Euler", "EulerJump", "Heun", "EulerMaruyama", "EDM" } do
        local pic = ("%s/%s.png"):format(dir, s)
        local out
        out, err, code = P.moonflow(("sample %s/checkpoint.safetensors --sampler %s --steps 3 --n 50 --out %s"):format(
          dir, s:lower(), pic))
        if serves[kind][s] then
          assert.are.equal(0, code, s .. ": " .. err)
          assert.are.equal("", err, s) -- a short run off a terminal prints no progress
          local e = tonumber(out:match(s:lower() .. "_3steps, 50 samples: energy distance ([%d%.]+)"))
          assert.truthy(e and e >= 0 and e < math.huge, s .. ": " .. out)
          assert.are.equal("\137PNG\r\n\26\n", (P.read(pic) or ""):sub(1, 8))
        else
          assert.are_not.equal(0, code, s)
          assert.truthy(err:find(("sample: --sampler %s does not apply to this %s checkpoint: "):format(s, kind), 1, true), err)
          assert.truthy(err:find(why[s], 1, true), err)
          assert.falsy(err:find("%.lua:%d+:"), err)
          assert.is_nil(P.read(pic))
        end
      end
    end)
  end

  it("finds a run's data from any folder", function()
    local rows = {}
    for i = 1, 1024 do rows[i] = { math.cos(i), math.sin(2 * i) } end
    npy(base .. "/points.npy", rows)
    local dir = base .. "/npy"
    -- the data path as given on the command line: relative to the current folder
    local _, err, code = P.run(("cd %q && %s train %s/%s %s data.name=npy data.path=%s out=%s"):format(
      base .. "/..", P.launcher, P.root, configs.SiT, tiny, base:match("([^/]+)$") .. "/points.npy", dir))
    assert.are.equal(0, code, err)
    assert.truthy(P.read(dir .. "/config.lua"):find(('path = "%s/points.npy"'):format(base), 1, true))
    -- from another folder, the checkpoint alone
    local out
    out, err, code = P.run(("cd / && %s sample %s/checkpoint.safetensors --n 60 --steps 3 --out %s/s.png"):format(
      P.launcher, dir, dir))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("euler_3steps, 60 samples: energy distance", 1, true), out)
  end)

  it("refuses an npy file that does not hold 2-D points before the run folder is made", function()
    local rows = {}
    for i = 1, 300 do rows[i] = { i, -i, 2 * i } end
    npy(base .. "/xyz.npy", rows)
    local dir = base .. "/xyz"
    local _, err, code = P.moonflow(("train %s %s data.name=npy data.path=%s out=%s"):format(
      configs.SiT, tiny, base .. "/xyz.npy", dir))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("data.name=npy gives samples of shape {3}; the toy configs train on 2-D points", 1, true), err)
    assert.are_not.equal(0, select(3, P.run(("test -e %q"):format(dir))), "the run folder was made")
  end)

  it("saves the samples beside the picture as .safetensors and .npy", function()
    local dir = base .. "/SiT"
    local out, err, code = P.moonflow(("sample %s/checkpoint.safetensors --n 60 --steps 3 --save --out %s/s.png"):format(
      dir, dir))
    local have_npy = select(1, P.lua("io.write(tostring(require('moonflow').io.save_npy ~= nil))")) == "true"
    if have_npy then
      assert.are.equal(0, code, err)
      assert.truthy(out:find("wrote " .. dir .. "/s.npy", 1, true), out)
    else
      assert.truthy(err:find("sample --save: this moonflow has no mf.io.save_npy; wrote " .. dir .. "/s.safetensors only", 1, true), err)
    end
    assert.truthy(out:find("wrote " .. dir .. "/s.safetensors", 1, true), out)
    -- the arrays hold the same {60, 2} samples
    local check = ([[
      local mf = require "moonflow"
      local t, meta = mf.io.load_safetensors(%q)
      local x = t.samples
      io.write(table.concat(x:shape(), ","), " ", meta.sampler, " ", meta.num_sampling_steps, " ")
      if mf.io.save_npy then
        local y = mf.io.load_npy(%q)
        io.write(tostring((x - y):abs():max():item() == 0))
      end]]):format(dir .. "/s.safetensors", dir .. "/s.npy")
    local o, e, c = P.lua(check)
    assert.are.equal(0, c, e)
    assert.are.equal(have_npy and "60,2 Euler 3 true" or "60,2 Euler 3 ", o)
  end)

  it("shows sampling progress: a bar on a terminal, else a line every few seconds", function()
    local Progress = require "moonflow.app.progress"
    local function sink()
      local buf = {}
      return { write = function(self, ...) for _, s in ipairs { ... } do buf[#buf + 1] = s end return self end,
        flush = function() end, text = function() return table.concat(buf) end }
    end
    local now = 0
    local out = sink()
    local synced = 0
    local t = Progress.ticker { label = "heun_8steps", tty = false, out = out, every = 5, clock = function() return now end,
      sync = function() synced = synced + 1 end }
    for i = 1, 8 do
      now = i * 2 -- 2 s a step: lines at 6 s (step 3), 12 s (step 6)
      t { i = i, steps = 8 }
    end
    t:done()
    assert.are.equal(8, synced) -- each step counted once its device work is done
    assert.are.equal("heun_8steps: step 3/8  elapsed 0:06  ETA 0:10\n"
      .. "heun_8steps: step 6/8  elapsed 0:12  ETA 0:04\n", out.text())
    now = 0
    out = sink()
    t = Progress.ticker { label = "euler", tty = true, out = out, clock = function() return now end }
    t { i = 1, steps = 2 }
    now = 61
    t { i = 2, steps = 2 }
    t:done()
    assert.are.equal("\reuler [" .. ("="):rep(12) .. (" "):rep(12) .. "] 1/2  0:00 "
      .. "\reuler [" .. ("="):rep(24) .. "] 2/2  1:01 \n", out.text())
  end)
end)
