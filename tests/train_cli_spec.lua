-- The main job end to end through the launcher: a run writes its folder, a
-- `kill -9` leaves the last checkpoint loadable, and resuming from it gives
-- the losses of an uninterrupted run.
local P = require "app_proc"
local launcher = P.launcher

-- stdout and stderr apart, stderr only for messages
local function sh(cmd)
  local out, err, code = P.run(cmd)
  return out, code, err
end

local base = P.scratch("train")
-- small and quick: 2000 steps, a checkpoint and a log line every 20
local STEPS = 2000
local common = "scripts/configs/two_moons_sit.lua steps=2000 batch=128 network.hidden=64 "
  .. "log_every=20 checkpoint_every=20 eval_n=300"

local read = P.read

local function log_losses(dir)
  local t = {}
  for _, r in ipairs(P.log_rows(dir)) do t[tonumber(r[1])] = tonumber(r[2]) end
  return t
end

describe("moonflow train", function()
  teardown(function() sh(("rm -rf %q*"):format(base)) end)

  it("writes config, log, checkpoint and pictures, and prints the summary", function()
    local out, code, err = sh(("%s train %s out=%s"):format(launcher, common, base .. "_full"))
    assert.are.equal(0, code, err)
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

  it("survives kill -9 and resumes to the log of the uninterrupted run", function()
    local dir = base .. "_killed"
    -- checkpoints every 30 steps, so a kill may land inside a logging window (60, 80]
    local killed_run = common .. " checkpoint_every=30"
    -- start in the background, kill it once step 60 is logged (and so saved)
    local pid = sh(("%s train %s out=%s >/dev/null 2>&1 & echo $!"):format(launcher, killed_run, dir))
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
    local out, code, err = sh(("%s run %s"):format(launcher, probe))
    os.remove(probe)
    assert.are.equal(0, code, err)
    local step = tonumber(out:match("step%s+(%d+)"))
    assert.truthy(step and step >= 60 and step % 30 == 0, out)

    out, code, err = sh(("%s train %s out=%s resume=%s"):format(launcher, killed_run, dir,
      dir .. "/checkpoint.safetensors"))
    assert.are.equal(0, code, err)
    -- the same rows: step, loss and lr to the digits printed; time never going back
    local full, resumed = P.log_rows(base .. "_full"), P.log_rows(dir)
    assert.are.equal(STEPS // 20, #full)
    assert.are.equal(#full, #resumed)
    for i = 1, #full do
      assert.are.same({ full[i][1], full[i][2], full[i][3] }, { resumed[i][1], resumed[i][2], resumed[i][3] },
        ("row %d (killed at step %d)"):format(i, step))
      if i > 1 then assert.truthy(tonumber(resumed[i][4]) >= tonumber(resumed[i - 1][4]), "time went back") end
    end
  end)

  it("samples from the checkpoint with another sampler", function()
    local out, code, err = sh(("%s sample %s --sampler heun --steps 8 --n 300 --out %s"):format(
      launcher, base .. "_full/checkpoint.safetensors", base .. "_heun.png"))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("heun_8steps, 300 samples: energy distance", 1, true), out)
    assert.are.equal("\137PNG\r\n\26\n", (read(base .. "_heun.png") or ""):sub(1, 8))
  end)

  it("explains bad configs and overrides", function()
    local out, code, err = sh(("%s train %s nonsense"):format(launcher, common))
    assert.are_not.equal(0, code)
    assert.truthy(err:find('override "nonsense" is not key=value', 1, true), err)
    out, code, err = sh(("%s train /nonexistent.lua"):format(launcher))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("cannot load /nonexistent.lua", 1, true), err)
    out, code = sh(("%s train --help"):format(launcher))
    assert.are.equal(0, code)
    assert.truthy(out:find("resume=PATH", 1, true), out)
  end)
end)
