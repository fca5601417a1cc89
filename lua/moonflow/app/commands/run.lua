return {
  summary = "run FILE.lua [ARGS...]: a Lua script with moonflow on its paths",
  usage = [[usage: scripts/moonflow run FILE.lua [ARGS...]

Runs FILE.lua with `require "moonflow"` available; the script sees its
arguments in `arg` (arg[0] is FILE.lua), as with lua5.4 FILE.lua.]],
  run = function(args)
    local file = args[1]
    if not file then error("run: which script? usage: scripts/moonflow run FILE.lua [ARGS...]", 0) end
    local chunk, err = loadfile(file)
    if not chunk then error(err, 0) end
    _G.arg = { [0] = file, table.unpack(args, 2) }
    chunk(table.unpack(args, 2))
    return 0
  end,
}
