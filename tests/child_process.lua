-- Runs a Lua chunk in a child lua5.4 with moonflow on its paths; returns its
-- stdout and its stderr separately (so compiler chatter on stderr can never
-- pass for data) and whether it exited with status 0.
local C = {}

local function slurp(path)
  local fh = io.open(path, "rb")
  if not fh then return "" end
  local s = fh:read("a")
  fh:close()
  return s
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- env: table of extra environment variables for the child
function C.run(code, env)
  local root = os.getenv("MOONFLOW_ROOT") or "."
  local build = os.getenv("MOONFLOW_BUILD") or (root .. "/build")
  local script, err = os.tmpname(), os.tmpname()
  local fh = assert(io.open(script, "w"))
  fh:write(code)
  fh:close()
  local vars = {}
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. quote(v) end
  table.sort(vars)
  local cmd = ("%s LUA_PATH=%s LUA_CPATH=%s lua5.4 %s 2>%s"):format(table.concat(vars, " "),
    quote(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/tests/?.lua;;"),
    quote(build .. "/lua/?.so;;"), quote(script), quote(err))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  local stderr = slurp(err)
  os.remove(script)
  os.remove(err)
  return out, stderr, ok == true
end

-- a fresh empty directory (for POCL_CACHE_DIR: a cold kernel build)
function C.tmpdir()
  local p = assert(io.popen("mktemp -d"))
  local d = p:read("l")
  p:close()
  return d
end

function C.rmdir(d)
  if d and d:match("^/tmp/") then os.execute("rm -rf " .. quote(d)) end
end

return C
