-- Support for `scripts/moonflow repl` (lua5.4 -i with mf loaded).
local R = {}

function R.banner()
  local mf = require "moonflow"
  local d = mf.device()
  print(("moonflow on %s (%s); `mf` is loaded. Try: mf.randn{2, 3}"):format(d.name, d.type))
end

return R
