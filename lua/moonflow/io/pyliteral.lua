-- A reader of the Python literals an npy header holds (numpy reads the
-- header with ast.literal_eval): strings in ' or ", ints, floats, True,
-- False, None, tuples, lists and dicts. A dict literal keeps the last of
-- duplicate keys, as Python does. Nothing is ever evaluated.
local P = {}

P.None = setmetatable({}, { __name = "pyliteral.None", __tostring = function() return "None" end })
local MAX_DEPTH = 32

-- tuples and lists are arrays tagged by their metatable; dicts map keys
P.tuple_mt = { __name = "tuple" }
P.list_mt = { __name = "list" }
P.dict_mt = { __name = "dict" }

local function fail(s, i, what)
  error(("not a Python literal at byte %d: %s"):format(i, what), 0)
end

local function ws(s, i) return s:find("[^ \t\r\n]", i) or #s + 1 end

local ESC = { ["\\"] = "\\", ["'"] = "'", ['"'] = '"', n = "\n", t = "\t", r = "\r", ["0"] = "\0" }

local function read_string(s, i)
  local q = s:sub(i, i)
  local parts, j = {}, i + 1
  while true do
    local a = s:find("[\\\n" .. q .. "]", j)
    if not a or s:sub(a, a) == "\n" then fail(s, i, "unterminated string") end
    parts[#parts + 1] = s:sub(j, a - 1)
    if s:sub(a, a) == q then return table.concat(parts), a + 1 end
    local e = ESC[s:sub(a + 1, a + 1)]
    if not e then fail(s, a, "unsupported escape \\" .. s:sub(a + 1, a + 1)) end
    parts[#parts + 1] = e
    j = a + 2
  end
end

local function read_number(s, i)
  local num = s:match("^[-+]?[%d_]*%.?[%d_]*[eE]?[-+]?%d*", i)
  local text = num:gsub("_", "")
  local j = i + #num
  if s:match("^[%w_.]", j) then fail(s, i, "bad number") end
  if text:find("[.eE]") then
    local v = tonumber(text)
    if not v then fail(s, i, "bad number " .. num) end
    return v + 0.0, j
  end
  if not text:match("^[-+]?%d+$") or num:find("__") or num:match("_$") or num:match("^[-+]?_") then
    fail(s, i, "bad number " .. num)
  end
  local v = tonumber(text) -- an integer, or a float when beyond int64
  if math.type(v) ~= "integer" then fail(s, i, "integer " .. num .. " out of range") end
  return v, j
end

local read_value

-- items up to the closing bracket; for dicts, key: value pairs
local function read_items(s, i, close, depth, dict)
  local out, n, commas = {}, 0, 0
  i = ws(s, i)
  while s:sub(i, i) ~= close do
    local k, v
    k, i = read_value(s, i, depth + 1)
    if dict then
      if type(k) ~= "string" and math.type(k) ~= "integer" then fail(s, i, "dict keys must be strings or ints") end
      i = ws(s, i)
      if s:sub(i, i) ~= ":" then fail(s, i, "expected ':'") end
      v, i = read_value(s, i + 1, depth + 1)
      out[k] = v -- a later duplicate replaces the earlier value
    else
      n = n + 1
      out[n] = k
    end
    i = ws(s, i)
    local c = s:sub(i, i)
    if c == "," then
      commas = commas + 1
      i = ws(s, i + 1)
    elseif c ~= close then
      fail(s, i, c == "" and "unexpected end" or ("expected ',' or '%s'"):format(close))
    end
  end
  return out, i + 1, n, commas
end

function read_value(s, i, depth)
  if depth > MAX_DEPTH then fail(s, i, ("nested deeper than %d"):format(MAX_DEPTH)) end
  i = ws(s, i)
  local c = s:sub(i, i)
  if c == "'" or c == '"' then return read_string(s, i) end
  if c:match("[-+%d.]") then return read_number(s, i) end
  if c == "{" then
    local d, j = read_items(s, i + 1, "}", depth, true)
    return setmetatable(d, P.dict_mt), j
  end
  if c == "[" then
    local l, j = read_items(s, i + 1, "]", depth, false)
    return setmetatable(l, P.list_mt), j
  end
  if c == "(" then
    local t, j, n, commas = read_items(s, i + 1, ")", depth, false)
    if n == 1 and commas == 0 then return t[1], j end -- (x) is x, (x,) a tuple
    return setmetatable(t, P.tuple_mt), j
  end
  local word = s:match("^[%a_][%w_]*", i)
  if word == "True" then return true, i + 4 end
  if word == "False" then return false, i + 5 end
  if word == "None" then return P.None, i + 4 end
  fail(s, i, c == "" and "unexpected end" or ("unexpected %q"):format(word or c))
end

-- decode(s) -> value; raises "not a Python literal at byte N: ..." on
-- anything else, trailing text included.
function P.decode(s)
  local v, i = read_value(s, 1, 0)
  i = ws(s, i)
  if i <= #s then fail(s, i, "trailing text") end
  return v
end

return P
