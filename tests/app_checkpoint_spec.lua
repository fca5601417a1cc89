-- What a training checkpoint holds and how `moonflow sample` reads it: the
-- config is JSON data, checked and compared with the stored weights before
-- anything is built, and never run; a resumed run's log is the
-- uninterrupted run's; a logged checkpoint step is a saved one.
local P = require "app_proc"
local J = require "moonflow.json"

local small = "scripts/configs/two_moons_sit.lua batch=64 network.hidden=16 network.depth=2 eval_n=100 "
  .. "evals.1.num_sampling_steps=4"

describe("moonflow checkpoints", function()
  local dir = P.scratch("ck")
  local ckpt = dir .. "/checkpoint.safetensors"
  teardown(function() P.run(("rm -rf %q*"):format(dir)) end)

  -- a copy of the checkpoint whose metadata entry `entry` (default config) holds `json`
  local function with_config(json, name, entry)
    local path = dir .. "/" .. name .. ".safetensors"
    local _, err, code = P.lua(([[
      local mf = require "moonflow"
      local t, m = mf.io.load_safetensors(%q)
      m[%q] = %q
      mf.io.save_safetensors(%q, t, m)]]):format(ckpt, entry or "config", json, path))
    assert.are.equal(0, code, err)
    return path
  end

  -- the checkpoint's metadata entry `config`, as stored
  local function stored_config()
    local out, err, code = P.lua(([[
      local mf = require "moonflow"
      local _, m = mf.io.load_safetensors(%q)
      io.write(m.config)]]):format(ckpt))
    assert.are.equal(0, code, err)
    return out
  end

  it("stores the config as JSON data", function()
    local out, err, code = P.moonflow(("train %s steps=40 log_every=20 checkpoint_every=20 out=%s"):format(small, dir))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("energy distance", 1, true), out)
    out, err, code = P.lua(([[
      local mf = require "moonflow"
      local J = require "moonflow.json"
      local _, m = mf.io.load_safetensors(%q)
      local cfg = J.decode(m.config)
      io.write(type(cfg), " ", tostring(type(cfg) == "table" and cfg.network.hidden), " ",
        tostring(type(cfg) == "table" and cfg.steps))]]):format(ckpt))
    assert.are.equal(0, code, err)
    assert.are.equal("table 16 40", out)
  end)

  it("refuses a config stored as Lua source without running it", function()
    local path = with_config(J.encode('error("the checkpoint config ran")'), "lua_src")
    local out, err, code = P.moonflow(("sample %s --n 50 --out %s/x.png"):format(path, dir))
    assert.are_not.equal(0, code, out)
    assert.falsy(err:find("config ran", 1, true), err)
    assert.truthy(err:find("stores its config as Lua source", 1, true), err)
    assert.truthy(err:find(path, 1, true), err)
    -- an endless loop would hang a reader that runs it
    path = with_config(J.encode("(function() while true do end end)()"), "loop")
    out, err, code = P.run(("export MOONFLOW_BUILD=%q; timeout 120 %q/scripts/moonflow sample %s --n 50 --out %s/x.png"):format(P.build, P.root, path, dir))
    assert.are_not.equal(124, code, "sample ran the checkpoint's endless loop")
    assert.are_not.equal(0, code, out)
    assert.truthy(err:find("stores its config as Lua source", 1, true), err)
  end)

  it("checks a hostile config against the stored weights before building anything", function()
    local cfg = J.decode(stored_config())
    cfg.network.hidden, cfg.network.depth = 65536, 1024 -- 4.4e12 weights
    local path = with_config(J.encode(cfg), "huge")
    local t0 = os.time()
    local out, err, code = P.moonflow(("sample %s --n 50 --out %s/x.png"):format(path, dir))
    assert.are_not.equal(0, code, out)
    assert.truthy(err:find("does not match the stored weights", 1, true), err)
    assert.truthy(err:find("hidden 65536, depth 1024", 1, true), err)
    assert.truthy(os.time() - t0 < 60)
    -- known keys, types and ranges are checked first
    cfg.network.hidden, cfg.network.depth = 16, 2
    cfg.network.bogus = 1
    out, err, code = P.moonflow(("sample %s --n 50"):format(with_config(J.encode(cfg), "bogus")))
    assert.are_not.equal(0, code, out)
    assert.truthy(err:find('network has unknown key "bogus"', 1, true), err)
    cfg.network.bogus = nil
    cfg.eval_n = -5
    out, err, code = P.moonflow(("sample %s --n 50"):format(with_config(J.encode(cfg), "neg")))
    assert.are_not.equal(0, code, out)
    assert.truthy(err:find("eval_n must be an integer in [2, 16777216], got -5", 1, true), err)
    -- a resume checks the stored progress window before using it
    for _, st in ipairs { '{"count":-1,"elapsed":0}', '{"count":3,"elapsed":0}', '{"count":0,"elapsed":"soon"}' } do
      out, err, code = P.moonflow(("train %s steps=60 out=%s/resumed resume=%s"):format(small, dir,
        with_config(st, "progress", "progress")))
      assert.are_not.equal(0, code, st)
      assert.truthy(err:find("bad progress state", 1, true), err)
    end
    -- the untouched checkpoint still samples
    out, err, code = P.moonflow(("sample %s --n 50 --out %s/ok.png"):format(ckpt, dir))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("50 samples: energy distance", 1, true), out)
  end)
end)

describe("moonflow train logs", function()
  local base = P.scratch("log")
  teardown(function() P.run(("rm -rf %q*"):format(base)) end)
  -- a constant learning rate does not depend on `steps`, so a run stopped at
  -- step 70 and resumed to 100 is the 100-step run
  local cfg = small .. " log_every=20 checkpoint_every=30 optimizer.schedule=constant"

  it("after a resume mid-window equal the uninterrupted run's, time going on", function()
    local full, stopped = base .. "_full", base .. "_stopped"
    local _, err, code = P.moonflow(("train %s steps=100 out=%s"):format(cfg, full))
    assert.are.equal(0, code, err)
    _, err, code = P.moonflow(("train %s steps=70 out=%s"):format(cfg, stopped))
    assert.are.equal(0, code, err)
    local before = P.log_rows(stopped)
    assert.are.equal("70", before[#before][1]) -- stopped inside the window (60, 80]
    _, err, code = P.moonflow(("train %s steps=100 out=%s resume=%s/checkpoint.safetensors"):format(
      cfg, stopped, stopped))
    assert.are.equal(0, code, err)
    local a, b = P.log_rows(full), P.log_rows(stopped)
    local steps = {}
    for i, r in ipairs(a) do steps[i] = r[1] end
    assert.are.equal("20 40 60 80 100", table.concat(steps, " "))
    assert.are.equal(#a, #b)
    for i = 1, #a do
      -- step, loss and lr to the digits printed
      assert.are.same({ a[i][1], a[i][2], a[i][3] }, { b[i][1], b[i][2], b[i][3] })
    end
    -- the time column goes on from the stopped run's
    for i = 2, #b do
      assert.truthy(tonumber(b[i][4]) >= tonumber(b[i - 1][4]), ("time %s after %s"):format(b[i][4], b[i - 1][4]))
    end
    assert.truthy(tonumber(b[4][4]) >= tonumber(before[3][4]))
  end)

  it("writes a checkpoint step's line only once the checkpoint is saved", function()
    local mf = require "moonflow"
    local Train = require "moonflow.app.train"
    local Config = require "moonflow.app.config"
    local out = base .. "_order"
    local c = Config.load("scripts/configs/two_moons_sit.lua")
    for _, o in ipairs { "steps=60", "batch=32", "network.hidden=8", "network.depth=1", "eval_n=50",
      "evals.1.num_sampling_steps=2", "log_every=20", "checkpoint_every=20", "out=" .. out } do
      Config.override(c, o)
    end
    local seen = {}
    local real = mf.io.save
    mf.io.save = function(path, entries)
      local logged = false
      for _, r in ipairs(P.log_rows(out)) do
        if tonumber(r[1]) == entries.step then logged = true end
      end
      seen[#seen + 1] = ("%d:%s"):format(entries.step, logged and "logged" or "not yet logged")
      return real(path, entries)
    end
    local ok, err = pcall(Train.run, c)
    mf.io.save = real
    assert.truthy(ok, err)
    assert.are.equal("20:not yet logged 40:not yet logged 60:not yet logged", table.concat(seen, " "))
  end)
end)
