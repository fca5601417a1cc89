-- Child processes for the application specs: stdout and stderr come back
-- apart (stderr is for people, never parsed as data), with the exit code.
local P = {}

P.root = os.getenv("MOONFLOW_ROOT") or "."
P.build = os.getenv("MOONFLOW_BUILD") or (P.root .. "/build")
P.launcher = ("MOONFLOW_BUILD=%q %q/scripts/moonflow"):format(P.build, P.root)

-- run(cmd) -> stdout, stderr, exit code (cmd runs under sh, in the repository root)
function P.run(cmd)
  local err = os.tmpname()
  local p = io.popen(("cd %q && ( %s ) 2>%q"):format(P.root, cmd, err))
  local out = p:read("a")
  local ok, _, code = p:close()
  local f = io.open(err)
  local e = f and f:read("a") or ""
  if f then f:close() end
  os.remove(err)
  return out, e, ok and 0 or code
end

-- moonflow(args) -> stdout, stderr, code of `scripts/moonflow args`
function P.moonflow(args) return P.run(P.launcher .. " " .. args) end

function P.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function P.exists(path) return P.read(path) ~= nil or os.rename(path, path) == true end

-- A fresh scratch folder name (not created).
function P.scratch(tag)
  local base = os.tmpname()
  os.remove(base)
  return base .. "_" .. tag
end

-- The rows of a run's log.csv as lists of fields (header dropped).
function P.log_rows(dir)
  local rows = {}
  for line in (P.read(dir .. "/log.csv") or ""):gmatch("[^\n]+") do
    if line:match("^%d") then
      local r = {}
      for f in line:gmatch("[^,]+") do r[#r + 1] = f end
      rows[#rows + 1] = r
    end
  end
  return rows
end

-- Runs a Lua snippet with moonflow through `scripts/moonflow run`.
function P.lua(src)
  local base = os.tmpname()
  os.remove(base)
  local path = base .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  local out, err, code = P.moonflow("run " .. path)
  os.remove(path)
  return out, err, code
end

return P
