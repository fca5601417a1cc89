-- Support for `scripts/moonflow repl`: lua5.4 -i with mf loaded. The stock
-- interpreter prints values (tensors through their __tostring) and survives
-- errors; here we add history kept across sessions, Tab completion of names
-- (globals, fields of tables, methods after ':') and help().
local R = {}

function R.history_path()
  local p = os.getenv("MOONFLOW_HISTORY")
  if p and p ~= "" then return p end
  return (os.getenv("HOME") or ".") .. "/.moonflow_history"
end

---------------------------------------------------------------- completion
local function is_name(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil end

-- the keys a value offers: its own, its __index chain's, mf's submodules
local function keys_of(v, methods_only)
  local out, seen = {}, {}
  local function add(k, val)
    if is_name(k) and not seen[k] and (not methods_only or type(val) == "function") then
      seen[k] = true
      out[#out + 1] = k
    end
  end
  local mf = package.loaded["moonflow"]
  if mf and mf.is_tensor(v) then
    for k, f in pairs(mf.Tensor) do add(k, f) end
    return out
  end
  local depth = 0
  while type(v) == "table" and depth < 8 do
    for k, val in pairs(v) do add(k, val) end
    local mt = getmetatable(v)
    if type(mt) ~= "table" then break end
    if type(mt.__submodules) == "table" then
      for k in pairs(mt.__submodules) do add(k, {}) end
    end
    v, depth = rawget(mt, "__index"), depth + 1
  end
  return out
end

-- complete("mf.ra") -> {"mf.rand", "mf.randint", "mf.randn"}: the word
-- readline hands over, a chain of names joined by '.' (and one ':' last)
function R.complete(text)
  local head, sep, part = text:match("^(.-)([.:])([%w_]*)$")
  local v
  if head then
    v = _G
    for name in (head .. "."):gmatch("([^.]*)%.") do
      if not is_name(name) then return {} end
      local ok, nxt = pcall(function() return v[name] end)
      if not ok or nxt == nil then return {} end
      v = nxt
    end
  else
    head, sep, part, v = "", "", text, _G
  end
  local out = {}
  for _, k in ipairs(keys_of(v, sep == ":")) do
    if k:sub(1, #part) == part and (k:sub(1, 1) ~= "_" or part:sub(1, 1) == "_") then
      out[#out + 1] = head .. sep .. k
    end
  end
  table.sort(out)
  return out
end

---------------------------------------------------------------------- help
local docs = require "moonflow.app.docs"

-- the value a doc name stands for ("mf.nn.Linear", "Tensor:select")
local function resolve(name)
  local mf = require "moonflow"
  local cls, method = name:match("^Tensor:(.+)$")
  if cls then return mf.Tensor[cls] end
  local v = { mf = mf }
  for part in name:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    local ok, nxt = pcall(function() return v[part] end)
    if not ok then return nil end
    v = nxt
  end
  return v
end

local function entry_text(name) return docs[name] end

-- help_text(x): the documentation of a value or a name, or the index
function R.help_text(x)
  local mf = require "moonflow"
  if x == nil then
    local names = {}
    for k in pairs(docs) do names[#names + 1] = k end
    table.sort(names)
    return "help(mf.randn), help(mf.nn.Linear) or help(\"Tensor:select\") shows one entry.\n" ..
      "Tab completes names: mf.<Tab>, x:<Tab>. Entries:\n  " .. table.concat(names, "  ")
  end
  if type(x) == "string" then
    if docs[x] then return entry_text(x) end
    if docs["mf." .. x] then return entry_text("mf." .. x) end
    if docs["Tensor:" .. x] then return entry_text("Tensor:" .. x) end
  end
  if mf.is_tensor(x) then
    local ms = keys_of(x, true)
    table.sort(ms)
    return ("a tensor of shape {%s}, dtype %s; help(\"Tensor:NAME\") describes a method. Methods:\n  %s")
      :format(table.concat(x:shape(), ", "), x:dtype(), table.concat(ms, " "))
  end
  local found = {}
  for name in pairs(docs) do
    if type(x) ~= "string" and resolve(name) == x then found[#found + 1] = name end
  end
  table.sort(found)
  if #found > 0 then
    local parts = {}
    for i, n in ipairs(found) do parts[i] = entry_text(n) end
    return table.concat(parts, "\n")
  end
  return ("no help for %s; help() lists the entries"):format(type(x) == "string" and ("%q"):format(x) or tostring(x))
end

function R.help(x) print(R.help_text(x)) end

function R.banner()
  local mf = require "moonflow"
  mf.core.repl_history(R.history_path(), 1000)
  mf.core.repl_complete(R.complete)
  _G.help = R.help
  local d = mf.device()
  print(("moonflow on %s (%s); `mf` is loaded. Try: mf.randn{2, 3}, help(), mf.<Tab>"):format(d.name, d.type))
end

return R
