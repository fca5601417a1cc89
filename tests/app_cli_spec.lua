-- The strict CLI: every option and override is checked (type, range, known
-- name, with the nearest known name for a typo) before anything is written;
-- an earlier run is never overwritten by accident; messages carry no
-- internal file:line prefix unless MOONFLOW_TRACE=1; MOONFLOW_DEVICE errors
-- list the devices.
local P = require "app_proc"

local small = "scripts/configs/two_moons_sit.lua batch=64 network.hidden=16 network.depth=2 eval_n=100 "
  .. "evals.1.num_sampling_steps=4 log_every=10 checkpoint_every=10"

local function exists(path) return select(3, P.run(("test -e %q"):format(path))) == 0 end

-- stderr names the problem once, as "moonflow: ...", with no Lua file:line inside
local function clean_error(err, code, want)
  assert.are_not.equal(0, code, err)
  assert.truthy(err:find(want, 1, true), ("wanted %q in:\n%s"):format(want, err))
  assert.falsy(err:find("%.lua:%d+:"), "internal location in: " .. err)
  assert.falsy(err:find("stack traceback", 1, true), err)
end

describe("moonflow's CLI", function()
  local base = P.scratch("cli")

  it("measures typos by edit distance (swaps of neighbours count one)", function()
    local O = require "moonflow.app.options"
    assert.are.equal(3, O.distance("kitten", "sitting"))
    assert.are.equal(1, O.distance("trian", "train"))
    assert.are.equal(1, O.distance("Stepz", "steps"))
    assert.are.equal(3, O.distance("", "abc"))
    assert.are.equal(0, O.distance("lr", "LR"))
    assert.are.equal("steps", O.nearest("stepz", { "seed", "steps", "batch" }))
    assert.is_nil(O.nearest("xyz", { "seed", "steps", "batch" }))
    local _, err, code = P.moonflow("trian x")
    clean_error(err, code, 'unknown command "trian" (did you mean train?)')
    _, err, code = P.moonflow("devices --all")
    clean_error(err, code, "devices: unknown option --all")
  end)
  teardown(function() P.run(("rm -rf %q*"):format(base)) end)

  it("refuses malformed and unknown sample options before reading the checkpoint", function()
    local missing = base .. "/missing.safetensors" -- never opened: the options fail first
    for args, want in pairs {
      ["--steps abc"] = 'sample: --steps must be an integer in [1, 100000], got "abc"',
      ["--steps 0"] = 'sample: --steps must be an integer in [1, 100000], got "0"',
      ["--stepz 3"] = "sample: unknown option --stepz (did you mean --steps?)",
      ["--n 10.5"] = 'sample: --n must be an integer in [2, 16777216], got "10.5"',
      ["--seed x"] = 'sample: --seed must be an integer in [0, 9223372036854775807], got "x"',
      ["--sampler eulr"] = 'sample: --sampler must be one of Euler, EulerJump, Heun, EulerMaruyama, EDM, got "eulr" (did you mean Euler?)',
      ["--steps"] = "sample: --steps needs a value",
      ["--raw 3"] = 'sample: unexpected argument "3"',
    } do
      local out, err, code = P.moonflow(("sample %s %s"):format(missing, args))
      clean_error(err, code, want)
      assert.are.equal("", out, args)
    end
  end)

  it("names the nearest known field of a mistyped override and writes nothing", function()
    local dir = base .. "/typo"
    for args, want in pairs {
      ["stepz=10"] = 'config has unknown key "stepz" (did you mean steps?',
      ["network.hiden=8"] = 'network has unknown key "hiden" (did you mean hidden?',
      ["optimizer.lr=fast"] = 'optimizer.lr must be a finite number in (0, 1000], got "fast"',
      ["--overwrit"] = "train: unknown option --overwrit (did you mean --overwrite?)",
    } do
      local _, err, code = P.moonflow(("train %s steps=10 out=%s %s"):format(small, dir, args))
      clean_error(err, code, want)
      assert.is_false(exists(dir), args .. " created the run folder")
    end
  end)

  it("refuses data that is not 2-D points before training", function()
    local dir = base .. "/images"
    for args, want in pairs {
      ["data.name=fashion_mnist"] = "data.name=fashion_mnist needs an image model: network.kind = \"DiT\"",
      ["data.name=idx data.path=/x.idx"] = "data.name=idx needs an image model; the toy configs train on 2-D points",
      ["data.name=mixture data.means={{0,0,0},{1,1,1}} data.stds={1,1}"] =
        "data.name=mixture has points of dimension 3; the toy configs train on 2-D points",
    } do
      local _, err, code = P.moonflow(("train %s steps=10 out=%s %s"):format(small, dir, args))
      clean_error(err, code, want)
      assert.is_false(exists(dir), args .. " created the run folder")
    end
  end)

  it("refuses to overwrite an earlier run unless --overwrite or resume= is given", function()
    local dir = base .. "/again"
    local _, err, code = P.moonflow(("train %s steps=10 out=%s"):format(small, dir))
    assert.are.equal(0, code, err)
    local files = { "config.lua", "log.csv", "checkpoint.safetensors" }
    local before = {}
    for i, f in ipairs(files) do before[i] = assert(P.read(dir .. "/" .. f)) end
    _, err, code = P.moonflow(("train %s steps=20 out=%s"):format(small, dir))
    clean_error(err, code, dir .. " holds an earlier run (config.lua, log.csv, checkpoint.safetensors); "
      .. "pass --overwrite to replace it, resume=" .. dir .. "/checkpoint.safetensors to continue it, or choose another out=")
    for i, f in ipairs(files) do assert.are.equal(before[i], P.read(dir .. "/" .. f), f .. " changed") end
    -- resuming another run's checkpoint into this folder would replace it too
    local other = base .. "/other"
    _, err, code = P.moonflow(("train %s steps=10 out=%s"):format(small, other))
    assert.are.equal(0, code, err)
    _, err, code = P.moonflow(("train %s steps=20 out=%s resume=%s/checkpoint.safetensors"):format(small, dir, other))
    clean_error(err, code, dir .. " holds an earlier run")
    for i, f in ipairs(files) do assert.are.equal(before[i], P.read(dir .. "/" .. f), f .. " changed") end
    _, err, code = P.moonflow(("train %s steps=20 out=%s/./ resume=%s/checkpoint.safetensors"):format(small, dir, dir))
    assert.are.equal(0, code, err)
    assert.are.equal(2, #P.log_rows(dir))
    _, err, code = P.moonflow(("train %s steps=10 out=%s --overwrite"):format(small, dir))
    assert.are.equal(0, code, err)
    assert.are.equal(1, #P.log_rows(dir))
  end)

  it("states errors without file:line unless MOONFLOW_TRACE=1", function()
    local missing = base .. "/nothing.safetensors"
    local _, err, code = P.moonflow("sample " .. missing)
    clean_error(err, code, "moonflow: moonflow.io.load_safetensors: cannot open " .. missing)
    _, err, code = P.run("MOONFLOW_TRACE=1 " .. P.launcher .. " sample " .. missing)
    assert.are_not.equal(0, code)
    assert.truthy(err:find("cannot open " .. missing, 1, true), err)
    assert.truthy(err:find("stack traceback", 1, true), err)
    assert.truthy(err:find("sample%.lua:%d+:"), err)
    -- a user's own script keeps its location
    local script = base .. "_boom.lua"
    local f = assert(io.open(script, "w"))
    f:write('local x = 1\nerror("boom " .. x)\n')
    f:close()
    _, err, code = P.moonflow("run " .. script)
    assert.are_not.equal(0, code)
    assert.are.equal("moonflow: " .. script .. ":2: boom 1\n", err)
  end)

  it("lists the devices whatever MOONFLOW_DEVICE says, and names them in its error", function()
    local list, err, code = P.moonflow("devices")
    assert.are.equal(0, code, err)
    local first = assert(list:match("^[* ] 0  (%S+)"), list)
    local out
    out, err, code = P.run("MOONFLOW_DEVICE=57 " .. P.launcher .. " devices")
    assert.are.equal(0, code, err)
    assert.are.equal(list:gsub("^%*", " "), out)
    assert.truthy(err:find("MOONFLOW_DEVICE=57 matches none of these devices", 1, true), err)
    out, err, code = P.run(("MOONFLOW_DEVICE=57 %s train %s steps=10 out=%s/dev"):format(P.launcher, small, base))
    clean_error(err, code, "no OpenCL device matches MOONFLOW_DEVICE=57; the devices are: 0 " .. first)
  end)
end)
