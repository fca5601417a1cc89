-- Drives `scripts/moonflow repl` in a real terminal through tmux.
local root = os.getenv("MOONFLOW_ROOT") or "."

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

local session = "mfrepl" .. tostring(os.time()) .. tostring(math.random(1e6))
-- a tmux server of this spec's own (-L): runs in parallel never share one
local tmux = "tmux -L " .. session
local hist = os.tmpname()

local function screen() return sh((tmux .. " capture-pane -p -t %s"):format(session)) end

-- waits until the screen contains text, or gives up after ~120 s (a cold
-- kernel cache on a loaded machine compiles for a while before the first answer)
local function wait_for(text)
  for _ = 1, 1200 do
    local s = screen()
    if s:find(text, 1, true) then return s end
    sh("sleep 0.1")
  end
  error(("the REPL never showed %q; screen:\n%s"):format(text, screen()))
end

local function send(...)
  local keys = {}
  for _, k in ipairs { ... } do keys[#keys + 1] = ("%q"):format(k) end
  sh((tmux .. " send-keys -t %s %s"):format(session, table.concat(keys, " ")))
end

local function start()
  os.remove(hist .. ".x")
  sh((tmux .. " new-session -d -s %s -x 150 -y 40 'MOONFLOW_HISTORY=%s MOONFLOW_BUILD=%s %s/scripts/moonflow repl'")
    :format(session, hist, os.getenv("MOONFLOW_BUILD") or (root .. "/build"), root))
  wait_for("`mf` is loaded")
end

local function stop()
  send("os.exit()", "Enter")
  for _ = 1, 50 do
    if not sh(tmux .. " has-session -t " .. session):match("^%s*$") then break end
    sh("sleep 0.1")
  end
  sh(tmux .. " kill-session -t " .. session)
end

-- the screen with lines that tmux wrapped joined back (what was printed)
local function joined() return sh((tmux .. " capture-pane -p -J -t %s"):format(session)) end

describe("moonflow repl", function()
  setup(function() os.remove(hist) end)
  teardown(function() sh(tmux .. " kill-session -t " .. session); os.remove(hist) end)

  it("prints tensors readably, survives errors and keeps history across sessions", function()
    start()
    send("x = mf.tensor{1, 2, 3}", "Enter")
    send("x * 2", "Enter")
    wait_for("tensor([2., 4., 6.], shape={3}, dtype=f32)")
    send("mf.tensor{1, 2} + mf.tensor{1, 2, 3}", "Enter")
    wait_for("moonflow.add: shapes {2} and {3} do not broadcast")
    send("x:sum():item() + 100", "Enter")
    wait_for("106")
    stop()
    local f = assert(io.open(hist))
    local saved = f:read("a")
    f:close()
    assert.truthy(saved:find("x * 2", 1, true))

    -- a new session recalls the previous one's lines with Up: past this
    -- session's line and the previous `os.exit()` to `x:sum():item() + 100`
    start()
    send("x = mf.tensor{10, 20, 30}", "Enter")
    send("Up", "Up", "Up", "Enter")
    wait_for("160")
    stop()
  end)

  it("completes names with Tab, answers help() and wraps wide tensors at the terminal's width", function()
    start()
    -- one candidate: the word becomes it; the generator prints its state
    send("mf.manual_s", "Tab")
    send("(3)", "Enter")
    send("mf.default_gen", "Tab")
    send("()", "Enter")
    wait_for("Generator(seed=3, offset=0)")
    -- a method of a tensor after ':'
    send("x = mf.arange(1, 4)", "Enter")
    send("x:sq", "Tab", "Tab")
    wait_for("x:square")
    send("C-u")
    send("help(mf.randn)", "Enter")
    wait_for("Standard normal (Box-Muller on Philox)")
    send("mf.arange(100)", "Enter")
    wait_for("shape={100}")
    -- 150 columns: rows are broken by the printer (every line fits), and the
    -- continuation lines start under the first entry
    local lines = {}
    for l in joined():gmatch("[^\n]+") do lines[#lines + 1] = l end
    local first
    for i, l in ipairs(lines) do
      assert.is_true(#l <= 150, ("line %d has %d columns: %s"):format(i, #l, l))
      if l:find("tensor([ 0.,  1.,", 1, true) then first = i end
    end
    assert.truthy(first, "no tensor printed")
    assert.truthy(lines[first + 1]:match("^        %d%d%., "), lines[first + 1])
    stop()
  end)
end)
