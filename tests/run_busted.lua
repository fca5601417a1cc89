-- Runs busted under this interpreter (lua5.4) with moonflow on the paths.
local root = os.getenv("MOONFLOW_ROOT") or "."
local build = os.getenv("MOONFLOW_BUILD") or (root .. "/build")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/tests/?.lua;" .. package.path
package.cpath = build .. "/lua/?.so;" .. package.cpath
require("busted.runner")({ standalone = false })
