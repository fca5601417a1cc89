-- Run configurations: a Lua file returning a table, `key=value` overrides
-- (nested with dots), and a stable Lua rendering written beside each run.
local Config = {}

-- Loads a config file; the file sees the standard libraries and nothing else.
function Config.load(path)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then error(("moonflow.config: cannot load %s: %s"):format(path, err), 0) end
  local ok, cfg = pcall(chunk)
  if not ok then error(("moonflow.config: %s failed: %s"):format(path, cfg), 0) end
  if type(cfg) ~= "table" then
    error(("moonflow.config: %s must return a table, got %s"):format(path, type(cfg)), 0)
  end
  return cfg
end

-- "3" -> 3, "true" -> true, "{1, 2}" -> {1, 2}, anything else stays a string
function Config.parse_value(s)
  if s == "true" then return true elseif s == "false" then return false elseif s == "nil" then return nil end
  local n = tonumber(s)
  if n then return n end
  if s:match("^%s*{") then
    local f = load("return " .. s, "=override", "t", {})
    if f then
      local ok, v = pcall(f)
      if ok then return v end
    end
    error(("moonflow.config: cannot parse table value %s"):format(s), 0)
  end
  return s
end

-- Applies "a.b.c=value" to cfg (creating nested tables as needed).
function Config.override(cfg, assignment)
  local key, value = assignment:match("^([%w_%.]+)=(.*)$")
  if not key then
    error(("moonflow.config: override %q is not key=value"):format(assignment), 0)
  end
  local node, parts = cfg, {}
  for part in key:gmatch("[^%.]+") do parts[#parts + 1] = part end
  for i = 1, #parts - 1 do
    local k = tonumber(parts[i]) or parts[i]
    if node[k] == nil then node[k] = {} end
    if type(node[k]) ~= "table" then
      error(("moonflow.config: %s is a %s, cannot set %s inside it"):format(
        table.concat(parts, ".", 1, i), type(node[k]), key), 0)
    end
    node = node[k]
  end
  local last = parts[#parts]
  node[tonumber(last) or last] = Config.parse_value(value)
  return cfg
end

local function is_ident(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") end

-- Lua source for v, keys sorted, so equal configs render equally.
function Config.render(v, indent)
  indent = indent or ""
  local t = type(v)
  if t == "string" then return ("%q"):format(v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v == math.huge then return "math.huge" elseif v == -math.huge then return "-math.huge" end
    return ("%.17g"):format(v)
  end
  if t == "boolean" or t == "nil" then return tostring(v) end
  if t ~= "table" then return ("nil --[[ %s ]]"):format(t) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  if #keys == 0 then return "{}" end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  local inner = indent .. "  "
  local parts = {}
  for _, k in ipairs(keys) do
    local key = is_ident(k) and k or ("[" .. Config.render(k) .. "]")
    parts[#parts + 1] = inner .. key .. " = " .. Config.render(v[k], inner)
  end
  return "{\n" .. table.concat(parts, ",\n") .. ",\n" .. indent .. "}"
end

-- A deep copy (configs are plain data).
function Config.copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = Config.copy(x) end
  return c
end

return Config
