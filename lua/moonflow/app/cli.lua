-- `scripts/moonflow COMMAND ...`: each command lives in moonflow.app.commands.<name>
-- and exports {summary = "...", usage = "...", run = function(args) ... end}.
local CLI = {}

CLI.commands = { "run", "repl", "devices", "bench", "train", "sample" }

local function command(name)
  local ok, m = pcall(require, "moonflow.app.commands." .. name)
  if ok then return m end
  return nil, m
end

function CLI.help()
  local lines = { "usage: scripts/moonflow COMMAND [ARGS...]", "", "commands:" }
  for _, name in ipairs(CLI.commands) do
    local m = command(name)
    if m then lines[#lines + 1] = ("  %-8s %s"):format(name, m.summary) end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "`scripts/moonflow COMMAND --help` describes one command."
  lines[#lines + 1] = "Environment: MOONFLOW_DEVICE (index or name substring) picks the OpenCL device;"
  lines[#lines + 1] = "MOONFLOW_TRACE=1 adds the Lua traceback to error messages."
  return table.concat(lines, "\n")
end

function CLI.main(argv)
  local name = argv[1]
  if name == nil or name == "--help" or name == "-h" or name == "help" then
    print(CLI.help())
    return name ~= nil and 0 or 1
  end
  local m, err = command(name)
  if not m then
    if err and not err:find("module 'moonflow.app.commands." .. name .. "' not found", 1, true) then
      io.stderr:write(err, "\n")
      return 1
    end
    local hint = require("moonflow.app.options").hint(name, CLI.commands)
    io.stderr:write(("moonflow: unknown command %q%s\n\n"):format(name, hint), CLI.help(), "\n")
    return 2
  end
  local args = { table.unpack(argv, 2) }
  if args[1] == "--help" or args[1] == "-h" then
    print(m.usage)
    return 0
  end
  return m.run(args) or 0
end

-- An error as the user sees it: the message without the "file.lua:NN: "
-- prefixes Lua puts in front when the file is moonflow's own (a user's
-- script run by `moonflow run` keeps its location); with MOONFLOW_TRACE=1
-- the whole message and the traceback.
function CLI.message(e, trace)
  local msg = tostring(e)
  if trace then return debug.traceback(msg, 3) end
  while true do
    local file, rest = msg:match("^([^\n:]-%.lua):%d+: (.*)$")
    if not file or not (file:find("/moonflow/", 1, true) or file:find("^moonflow/")) then return msg end
    msg = rest
  end
end

-- run as a script by the launcher
if arg and arg[0] and arg[0]:match("cli%.lua$") then
  local trace = (os.getenv("MOONFLOW_TRACE") or "") ~= "" and os.getenv("MOONFLOW_TRACE") ~= "0"
  local ok, rc = xpcall(CLI.main, function(e) return CLI.message(e, trace) end, arg)
  if not ok then
    io.stderr:write("moonflow: ", tostring(rc), "\n")
    os.exit(1, true)
  end
  os.exit(rc, true) -- close the state: finalizers wait for the device queue
end

return CLI
