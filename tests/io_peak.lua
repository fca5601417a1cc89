-- Peak memory of one call in a fresh process: runs `code` (Lua source that
-- may use `io_`, the moonflow.io module) in a new lua5.4 and returns
-- ok, how many kB its peak resident memory (VmHWM) grew, and the error text.
local P = {}

function P.run(dir, code)
  local root = os.getenv("MOONFLOW_ROOT") or "."
  local build = os.getenv("MOONFLOW_BUILD") or (root .. "/build")
  local script = dir .. "/peak_probe.lua"
  local f = assert(io.open(script, "wb"))
  f:write(([[
package.path = %q .. "/lua/?.lua;" .. %q .. "/lua/?/init.lua;" .. package.path
package.cpath = %q .. "/lua/?.so;" .. package.cpath
local io_ = require "moonflow.io"
local function hwm()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%%s+(%%d+)")
    if kb then return tonumber(kb) end
  end
end
local before = hwm()
local ok, err = pcall(function() %s end)
io.write(tostring(ok), " ", hwm() - before, " ", tostring(err), "\n")
]]):format(root, root, build, code))
  f:close()
  local pipe = assert(io.popen(("lua5.4 %q 2>&1"):format(script)))
  local out = pipe:read("a")
  pipe:close()
  local ok, grew, err = out:match("^(%a+) (%d+) (.*)$")
  assert(ok, "the probe failed: " .. out)
  return ok == "true", tonumber(grew), err
end

return P
