-- Support for `scripts/moonflow repl`: lua5.4 -i with mf loaded. The stock
-- interpreter prints values (tensors through their __tostring) and survives
-- errors; here we add history kept across sessions.
local R = {}

function R.history_path()
  local p = os.getenv("MOONFLOW_HISTORY")
  if p and p ~= "" then return p end
  return (os.getenv("HOME") or ".") .. "/.moonflow_history"
end

function R.banner()
  local mf = require "moonflow"
  mf.core.repl_history(R.history_path(), 1000)
  local d = mf.device()
  print(("moonflow on %s (%s); `mf` is loaded. Try: mf.randn{2, 3}"):format(d.name, d.type))
end

return R
