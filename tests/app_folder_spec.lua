-- The run folder of `moonflow train`: paths never reach a shell, one run at
-- a time holds the folder (an flock the OS drops with the process), stale
-- temporary files of killed writers are removed, and a bad config fails
-- before the folder is touched.
local P = require "app_proc"

local small = "scripts/configs/two_moons_sit.lua batch=64 network.hidden=16 network.depth=2 eval_n=100 "
  .. "evals.1.num_sampling_steps=4 log_every=20 checkpoint_every=20"

local function alive(pid) return select(3, P.run("kill -0 " .. pid)) == 0 end

local function wait_until(pred, what)
  for _ = 1, 3000 do
    if pred() then return end
    P.run("sleep 0.02")
  end
  error("timed out waiting for " .. what)
end

describe("moonflow train's run folder", function()
  local base = P.scratch("folder")
  teardown(function() P.run(("rm -rf %q*"):format(base)) end)

  it("is never named to a shell", function()
    assert.are.equal(0, select(3, P.run(("mkdir -p %q"):format(base))))
    local marker = base .. "/pwned"
    local out_dir = base .. "/o$(touch " .. marker .. ")`touch " .. marker .. "`"
    local out, err, code = P.moonflow(("train %s steps=20 'out=%s'"):format(small, out_dir))
    assert.are.equal(0, code, err)
    assert.truthy(out:find(out_dir, 1, true), out)
    assert.is_nil(P.read(marker), "a path from the command line ran in a shell")
    assert.truthy(P.read(out_dir .. "/log.csv"), "no log in the folder named literally")
  end)

  it("is held by one run at a time, and a killed run leaves no lock", function()
    local dir = base .. "/shared"
    -- run A: long enough to be running when B starts
    local pid = P.run(("%s train %s steps=1000000 out=%s >/dev/null 2>&1 & echo $!"):format(P.launcher, small, dir))
    pid = assert(math.tointeger(tonumber(pid:match("%d+"))))
    finally(function() P.run("kill -9 " .. pid .. " 2>/dev/null") end)
    wait_until(function() return #P.log_rows(dir) > 0 end, "run A's first log line")
    local cfg_a, log_a = P.read(dir .. "/config.lua"), P.read(dir .. "/log.csv")
    assert.truthy(cfg_a:find("hidden = 16", 1, true))
    -- run B fails at once, naming the folder and A, and writes nothing there
    local out, err, code = P.moonflow(("train %s network.hidden=8 steps=20 out=%s"):format(small, dir))
    assert.are_not.equal(0, code, out)
    assert.truthy(err:find(dir .. " is in use by another run (pid " .. pid .. ")", 1, true), err)
    assert.truthy(P.read(dir .. "/config.lua"):find("hidden = 16", 1, true), "B rewrote A's config.lua")
    assert.truthy(alive(pid), "run A died")
    -- kill -9 A: the OS drops its lock
    assert.are.equal(0, select(3, P.run("kill -9 " .. pid)))
    wait_until(function() return not alive(pid) end, "run A to die")
    -- a temporary file of a dead writer goes; one of a live process stays
    local dead = assert(math.tointeger(tonumber((P.run("sh -c 'echo $$'")):match("%d+"))))
    local sleeper = assert(math.tointeger(tonumber((P.run("sleep 120 >/dev/null 2>&1 & echo $!")):match("%d+"))))
    assert.is_false(alive(dead))
    local stale = dir .. "/checkpoint.safetensors.tmp." .. dead
    local live = dir .. "/samples.png.tmp." .. sleeper
    for _, p in ipairs { stale, live } do
      local f = assert(io.open(p, "w"))
      f:write("partial")
      f:close()
    end
    -- A's files are an earlier run: replacing them takes --overwrite
    out, err, code = P.moonflow(("train %s network.hidden=8 steps=20 out=%s --overwrite"):format(small, dir))
    P.run("kill " .. sleeper)
    assert.are.equal(0, code, err)
    assert.truthy(P.read(dir .. "/config.lua"):find("hidden = 8", 1, true))
    assert.is_nil(P.read(stale), "the dead writer's temporary file is still there")
    assert.are.equal("partial", P.read(live))
    assert.are_not.equal(log_a, P.read(dir .. "/log.csv"))
  end)

  it("is not touched when the config or the resume checkpoint is bad", function()
    local fresh = base .. "/never"
    local out, err, code = P.moonflow(("train %s network.hidden=abc out=%s"):format(small, fresh))
    assert.are_not.equal(0, code, out)
    assert.truthy(err:find('network.hidden must be an integer in [1, 65536], got "abc"', 1, true), err)
    assert.is_nil(P.read(fresh .. "/config.lua"))
    assert.are_not.equal(0, select(3, P.run(("test -e %q"):format(fresh))), "the folder was created")
    -- an existing run keeps its files byte for byte
    local dir = base .. "/shared"
    local files = { "config.lua", "log.csv", "checkpoint.safetensors" }
    local before = {}
    for i, f in ipairs(files) do before[i] = assert(P.read(dir .. "/" .. f)) end
    for _, bad in ipairs { "interface.kind=Foo", "evals.1.sampler=Nope", "optimizer.lr=-1",
      "resume=" .. base .. "/missing.safetensors", "steps=5 resume=" .. dir .. "/checkpoint.safetensors" } do
      out, err, code = P.moonflow(("train %s steps=20 out=%s %s"):format(small, dir, bad))
      assert.truthy(err:find("moonflow: ", 1, true), err)
      assert.are_not.equal(0, code, bad)
      for i, f in ipairs(files) do
        assert.are.equal(before[i], P.read(dir .. "/" .. f), f .. " changed by a run with " .. bad)
      end
    end
  end)

  it("has no shell or code loading anywhere in the library", function()
    local files = P.run(("find %q/lua -name '*.lua'"):format(P.root))
    local found = {}
    for path in files:gmatch("[^\n]+") do
      local n = 0
      for line in io.lines(path) do
        n = n + 1
        local code = line:gsub("%-%-.*$", "")
        for _, pat in ipairs { "os%.execute", "io%.popen", "loadstring", "dofile", "[^%w_%.:]load%s*%(" } do
          if code:find(pat) then found[#found + 1] = ("%s:%d: %s"):format(path, n, line) end
        end
      end
    end
    assert.are.same({}, found)
  end)
end)
