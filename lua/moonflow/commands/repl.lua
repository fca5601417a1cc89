return {
  summary = "an interactive Lua with moonflow loaded as mf",
  usage = [[usage: scripts/moonflow repl

Lua 5.4 with `mf = require "moonflow"`: readline editing and history,
expressions print their values (tensors as numpy does), errors are
reported and the session goes on.]],
  -- the launcher starts the interpreter itself; this runs only from Lua
  run = function()
    return os.execute("lua5.4 -e 'mf = require \"moonflow\"; require(\"moonflow.repl\").banner()' -i") and 0 or 1
  end,
}
