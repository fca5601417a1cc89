return {
  summary = "run the benchmarks (scripts/bench.lua)",
  usage = [[usage: scripts/moonflow bench [ARGS...]

Runs scripts/bench.lua; its arguments pick sections (see its header).]],
  run = function(args)
    local root = os.getenv("MOONFLOW_ROOT") or "."
    local chunk, err = loadfile(root .. "/scripts/bench.lua")
    if not chunk then error(err, 0) end
    _G.arg = { [0] = root .. "/scripts/bench.lua", table.unpack(args) }
    chunk(table.unpack(args))
    return 0
  end,
}
