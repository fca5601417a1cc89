-- Every ```lua block of README.md runs as written, each in a fresh lua5.4
-- in its own temporary folder, so the README cannot drift from the API.
--
-- Two HTML comments (invisible on GitHub) may precede a block:
--   <!-- fragment: setup LUA -->   the block continues a set-up: LUA runs first
--   <!-- quick: OLD => NEW -->      the spec runs it with OLD replaced by NEW
--                                   (a shorter training loop); OLD must occur
local C = require "child_process"
local root = os.getenv("MOONFLOW_ROOT") or "."
local build = os.getenv("MOONFLOW_BUILD") or (root .. "/build")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- the blocks in order: {code = ..., line = N, setup = ..., quick = {{old, new}, ...}}
local function blocks(text)
  local out, pending, n = {}, { quick = {} }, 0
  local inside, cur
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if inside then
      if line:match("^```%s*$") then
        out[#out + 1] = cur
        inside, pending = false, { quick = {} }
      else
        cur.code = cur.code .. line .. "\n"
      end
    elseif line:match("^```lua%s*$") then
      inside = true
      cur = { code = "", line = n, setup = pending.setup, quick = pending.quick }
    elseif line:match("^<!%-%- fragment: setup ") then
      pending.setup = assert(line:match("^<!%-%- fragment: setup (.-)%s*%-%->%s*$"), "bad fragment line " .. n)
    elseif line:match("^<!%-%- quick: ") then
      local old, new = line:match("^<!%-%- quick: (.-) => (.-)%s*%-%->%s*$")
      assert(old, "bad quick line " .. n)
      pending.quick[#pending.quick + 1] = { old, new }
    elseif line:match("%S") and not line:match("^<!%-%-") then
      pending = { quick = {} } -- a marker belongs to the block right after it
    end
  end
  assert(not inside, "README.md: a ```lua block is not closed")
  return out
end

local function run_block(b)
  local code = b.code
  for _, r in ipairs(b.quick) do
    local i, j = code:find(r[1], 1, true)
    assert(i, ("README.md:%d: the quick marker's %q is not in the block"):format(b.line, r[1]))
    code = code:sub(1, i - 1) .. r[2] .. code:sub(j + 1)
  end
  if b.setup then code = b.setup .. "\n" .. code end
  local dir = C.tmpdir()
  local f = assert(io.open(dir .. "/block.lua", "w"))
  f:write(code)
  f:close()
  local cmd = ("cd %s && LUA_PATH=%s LUA_CPATH=%s lua5.4 block.lua 2>&1"):format(q(dir),
    q(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"), q(build .. "/lua/?.so;;"))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  C.rmdir(dir)
  return ok == true, out
end

describe("README.md", function()
  local f = assert(io.open(root .. "/README.md"))
  local list = blocks(f:read("a"))
  f:close()

  it("has Lua examples", function() assert.is_true(#list >= 3) end)

  it("reads the markers of the block right after them only", function()
    local text = table.concat({
      "<!-- fragment: setup local x = 2 -->", "<!-- quick: 1000 => 3 -->", "```lua", "print(x * 1000)", "```",
      "<!-- quick: a => b -->", "text between", "```lua", "y = 1", "```", "```sh", "ls", "```" }, "\n")
    local l = blocks(text)
    assert.equal(2, #l)
    assert.same({ code = "print(x * 1000)\n", line = 3, setup = "local x = 2", quick = { { "1000", "3" } } }, l[1])
    assert.same({ code = "y = 1\n", line = 8, quick = {} }, l[2])
    local ok, out = run_block(l[1])
    assert.is_true(ok)
    assert.equal("6\n", out)
  end)

  for i, b in ipairs(list) do
    it(("Lua block %d (line %d) runs"):format(i, b.line), function()
      local ok, out = run_block(b)
      assert(ok, ("README.md:%d: the block fails:\n%s"):format(b.line, out))
    end)
  end
end)
