-- The kernel build never writes to the terminal: a cold build (empty PoCL
-- cache) prints nothing, compiler warnings included, and a failed build is a
-- clean Lua error whose log points at cl/<file>:<line>.
local child = require "child_process"

-- one kernel launch and one read: 2 * (1 + 2 + 3) = 12
local launch = [[
local mf = require "moonflow"
io.write(("%.17g\n"):format((mf.tensor({ 1, 2, 3 }) * 2):sum():item()))
]]

local function cold(code, env)
  local dir = child.tmpdir()
  env = env or {}
  env.POCL_CACHE_DIR = dir
  local out, err, ok = child.run(code, env)
  child.rmdir(dir)
  return out, err, ok
end

describe("a cold kernel build", function()
  it("writes nothing to stderr and the result to stdout", function()
    local out, err, ok = cold(launch)
    assert.is_true(ok, err)
    assert.equal("", err)
    assert.equal("12\n", out)
  end)

  it("keeps compiler warnings off the terminal", function()
    -- a macro defined twice: the compiler warns (PoCL prints "1 warning generated.")
    local out, err, ok = cold(launch, { MOONFLOW_KERNEL_OPTIONS = "-DMF_TWICE=1 -DMF_TWICE=2" })
    assert.is_true(ok, err)
    assert.equal("", err)
    assert.equal("12\n", out)
  end)
end)

describe("a failed kernel build", function()
  it("is a Lua error carrying the log at cl/<file>:<line>, with nothing on stderr", function()
    -- mf_sidx (cl/common.cl) defined away: `inline int 1(...)` does not parse
    local code = [[
local mf = require "moonflow"
for i = 1, 2 do -- the second call reports the same failure again
  local ok, e = pcall(function() return (mf.tensor({ 1, 2 }) * 2):sum():item() end)
  io.write(tostring(ok), "\n", e, "\n")
end
]]
    local out, err, ok = cold(code, { MOONFLOW_KERNEL_OPTIONS = "-Dmf_sidx=1" })
    assert.is_true(ok, err)
    assert.equal("", err)
    local first, second = out:match("^false\n(.-)\nfalse\n(.*)$")
    assert.is_truthy(first, out)
    assert.matches("kernel build failed", first)
    local line = first:match("cl/common%.cl:(%d+):")
    assert.is_truthy(line, "no cl/common.cl position in: " .. first)
    -- the line named is the one that declares mf_sidx
    local fh = assert(io.open((os.getenv("MOONFLOW_ROOT") or ".") .. "/cl/common.cl"))
    local n, decl = 0, nil
    for l in fh:lines() do
      n = n + 1
      if l:match("inline int mf_sidx%(") then decl = n end
    end
    fh:close()
    assert.equal(decl, tonumber(line))
    assert.matches("kernel build failed", second)
  end)
end)
