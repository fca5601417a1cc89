-- The main job end to end through the launcher: a run writes its folder, a
-- `kill -9` leaves the last checkpoint loadable, and resuming from it gives
-- the losses of an uninterrupted run.
local root = os.getenv("MOONFLOW_ROOT") or "."
local build = os.getenv("MOONFLOW_BUILD") or (root .. "/build")

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local launcher = ("MOONFLOW_BUILD=%q %q/scripts/moonflow"):format(build, root)
local base = os.tmpname()
os.remove(base)
-- small and quick: 2000 steps, a checkpoint and a log line every 20
local STEPS = 2000
local common = "scripts/configs/two_moons_sit.lua steps=2000 batch=128 network.hidden=64 "
  .. "log_every=20 checkpoint_every=20 eval_n=300"

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function log_losses(dir)
  local t = {}
  for line in (read(dir .. "/log.csv") or ""):gmatch("[^\n]+") do
    local step, loss = line:match("^(%d+),([^,]+)")
    if step then t[tonumber(step)] = tonumber(loss) end
  end
  return t
end

describe("moonflow train", function()
  teardown(function() sh(("rm -rf %q*"):format(base)) end)

  it("writes config, log, checkpoint and pictures, and prints the summary", function()
    local out, code = sh(("cd %q && %s train %s out=%s"):format(root, launcher, common, base .. "_full"))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("energy distance", 1, true), out)
    assert.truthy(out:find("floor", 1, true), out)
    for _, f in ipairs { "config.lua", "log.csv", "checkpoint.safetensors", "loss.png", "samples_euler_50steps.png" } do
      assert.truthy(read(base .. "_full/" .. f), "missing " .. f)
    end
    local cfg = dofile(base .. "_full/config.lua")
    assert.are.equal(STEPS, cfg.steps)
    assert.are.equal(64, cfg.network.hidden)
    local png = read(base .. "_full/samples_euler_50steps.png")
    assert.are.equal("\137PNG\r\n\26\n", png:sub(1, 8))
    local l = log_losses(base .. "_full")
    for s = 20, STEPS, 20 do assert.truthy(l[s], "no loss logged at step " .. s) end
  end)

  it("survives kill -9 and resumes to the losses of the uninterrupted run", function()
    local dir = base .. "_killed"
    -- start in the background, kill it once the step-60 checkpoint is written
    local pid = sh(("cd %q && (%s train %s out=%s >/dev/null 2>&1 & echo $!)"):format(root, launcher, common, dir))
    pid = assert(tonumber(pid:match("%d+")))
    local killed, _, code = false
    for _ = 1, 3000 do
      local l = log_losses(dir)
      if l[60] then
        _, code = sh("kill -9 " .. pid)
        killed = true
        break
      end
      sh("sleep 0.02")
    end
    assert.truthy(killed, "the run never logged step 60")
    assert.are.equal(0, code, "the run had ended before the kill")
    assert.is_nil(log_losses(dir)[STEPS], "the run had finished before the kill")
    sh("sleep 0.5")
    -- the checkpoint on disk loads, whole, at a step the run had reached
    local probe = os.tmpname()
    local f = assert(io.open(probe, "w"))
    f:write(([[local mf = require "moonflow"
      local ck = mf.io.load(%q)
      print("step", ck.step)]]):format(dir .. "/checkpoint.safetensors"))
    f:close()
    local out, code = sh(("%s run %s"):format(launcher, probe))
    os.remove(probe)
    assert.are.equal(0, code, out)
    local step = tonumber(out:match("step%s+(%d+)"))
    assert.truthy(step and step >= 60 and step % 20 == 0, out)

    out, code = sh(("cd %q && %s train %s out=%s resume=%s"):format(root, launcher, common, dir,
      dir .. "/checkpoint.safetensors"))
    assert.are.equal(0, code, out)
    local full, resumed = log_losses(base .. "_full"), log_losses(dir)
    for s = 20, STEPS, 20 do
      assert.are.equal(full[s], resumed[s], ("loss at step %d: %s uninterrupted, %s resumed"):format(
        s, tostring(full[s]), tostring(resumed[s])))
    end
  end)

  it("samples from the checkpoint with another sampler", function()
    local out, code = sh(("cd %q && %s sample %s --sampler heun --steps 8 --n 300 --out %s"):format(
      root, launcher, base .. "_full/checkpoint.safetensors", base .. "_heun.png"))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("heun_8steps, 300 samples: energy distance", 1, true), out)
    assert.are.equal("\137PNG\r\n\26\n", (read(base .. "_heun.png") or ""):sub(1, 8))
  end)

  it("explains bad configs and overrides", function()
    local out, code = sh(("cd %q && %s train %s nonsense"):format(root, launcher, common))
    assert.are_not.equal(0, code)
    assert.truthy(out:find('override "nonsense" is not key=value', 1, true), out)
    out, code = sh(("cd %q && %s train /nonexistent.lua"):format(root, launcher))
    assert.are_not.equal(0, code)
    assert.truthy(out:find("cannot load /nonexistent.lua", 1, true), out)
    out, code = sh(("%s train --help"):format(launcher))
    assert.are.equal(0, code)
    assert.truthy(out:find("resume=PATH", 1, true), out)
  end)
end)
