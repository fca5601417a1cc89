return {
  summary = "an interactive Lua with moonflow loaded as mf",
  usage = [[usage: scripts/moonflow repl

Lua 5.4 with `mf = require "moonflow"`: readline editing and history,
expressions print their values (tensors as numpy does), errors are
reported and the session goes on.]],
  -- the launcher starts the interpreter itself (lua5.4 -i); nothing here
  -- starts a shell, so from Lua this only says how to get there
  run = function()
    error("repl: start it with `scripts/moonflow repl` (the launcher runs lua5.4 -i with moonflow loaded)", 0)
  end,
}
