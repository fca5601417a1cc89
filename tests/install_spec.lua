-- `cmake --install` into a fresh prefix: the module loads from another folder
-- with only the prefix's standard Lua dirs on the paths (and the build folder
-- deleted), pkg-config describes the C library, and the launcher runs.
local C = require "child_process"
local H = require "helpers"
local root = os.getenv("MOONFLOW_ROOT") or "."

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- runs a shell command; returns its output (stdout and stderr) and success.
-- The build and the installed copy are not the sanitized ones: scripts/check.sh
-- sanitize preloads libasan, which the compilers must not inherit.
local function sh(cmd)
  local p = assert(io.popen("(unset LD_PRELOAD; " .. cmd .. ") 2>&1"))
  local out = p:read("a")
  return out, p:close() == true
end

local function must(cmd)
  local out, ok = sh(cmd)
  assert(ok, ("failed: %s\n%s"):format(cmd, out))
  return out
end

describe("cmake --install", function()
  local tmp, prefix, elsewhere
  local lua_dir, c_dir -- the prefix's standard Lua 5.4 module dirs

  setup(function()
    tmp = C.tmpdir()
    prefix, elsewhere = tmp .. "/prefix", tmp .. "/elsewhere"
    local build = tmp .. "/build"
    must(("cmake -S %s -B %s -DCMAKE_INSTALL_PREFIX=%s >/dev/null"):format(q(root), q(build), q(prefix)))
    must(("cmake --build %s -j2 --target moonflow moonflow_core >/dev/null"):format(q(build)))
    must(("cmake --install %s >/dev/null"):format(q(build)))
    -- nothing installed may lean on the build folder
    must("rm -rf " .. q(build))
    must("mkdir -p " .. q(elsewhere))
    lua_dir, c_dir = prefix .. "/share/lua/5.4", prefix .. "/lib/lua/5.4"
  end)
  teardown(function() C.rmdir(tmp) end)

  it("puts the module in the prefix's standard Lua 5.4 dirs", function()
    assert.truthy(io.open(c_dir .. "/moonflow/core.so"), "no lib/lua/5.4/moonflow/core.so")
    assert.truthy(io.open(lua_dir .. "/moonflow/init.lua"), "no share/lua/5.4/moonflow/init.lua")
    assert.truthy(io.open(lua_dir .. "/moonflow/nn/init.lua"), "subfolders of lua/moonflow missing")
  end)

  it("requires moonflow from another folder with the prefix's dirs as the only paths", function()
    local code = [[
local mf = require "moonflow"
local a = mf.tensor{{1, 2}, {3, 4}}
local y = a:matmul(mf.tensor{{1}, {10}})
print(table.concat(y:tolist(), " "), mf.randn({2}, "f64"):dtype())
print(package.searchpath("moonflow", package.path))
print(package.searchpath("moonflow.core", package.cpath))]]
    local out = must(("cd %s && LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s"):format(q(elsewhere),
      q(lua_dir .. "/?.lua;" .. lua_dir .. "/?/init.lua"), q(c_dir .. "/?.so"), q(code)))
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    -- [1 2; 3 4] [1; 10] = [21; 43]
    assert.equal("21.0 43.0\tf64", lines[#lines - 2])
    assert.equal(lua_dir .. "/moonflow/init.lua", lines[#lines - 1])
    assert.equal(c_dir .. "/moonflow/core.so", lines[#lines])
  end)

  it("describes the C library to pkg-config, and a C program builds and runs with it", function()
    local env = "PKG_CONFIG_PATH=" .. q(prefix .. "/lib/pkgconfig")
    local flags = must(env .. " pkg-config --cflags --libs moonflow")
    assert.truthy(flags:find("-I" .. prefix .. "/include/moonflow", 1, true), flags)
    assert.truthy(flags:find("-L" .. prefix .. "/lib -lmoonflow", 1, true), flags)
    assert.equal("0.1.0\n", must(env .. " pkg-config --modversion moonflow"))
    local src = H.spit(tmp .. "/use.c", [[
#include <stdio.h>
#include "mf.h"
int main(void) { printf("%s %d\n", mf_dtype_name(MF_F64), (int)mf_dtype_size(MF_F64)); return 0; }
]])
    must(("cc %s -o %s $(%s pkg-config --cflags --libs moonflow)"):format(q(src), q(tmp .. "/use"), env))
    local out = must(("LD_LIBRARY_PATH=%s %s"):format(q(prefix .. "/lib"), q(tmp .. "/use")))
    assert.equal("f64 8\n", out)
  end)

  it("installs a launcher that runs without the source tree", function()
    local out = must(("cd %s && env -u MOONFLOW_ROOT -u MOONFLOW_BUILD -u LUA_PATH -u LUA_CPATH %s devices")
      :format(q(elsewhere), q(prefix .. "/bin/moonflow")))
    -- one line per device, the one in use marked *
    assert.truthy(out:find("%* 0 ") or out:find("%* %d+ "), out)
    assert.truthy(out:find("fp64="), out)
  end)
end)
