-- A small strict JSON (RFC 8259) encoder and decoder for safetensors headers
-- and checkpoint metadata. Integers stay Lua integers; floats keep a '.'
-- or exponent so they decode as floats again.
local J = {}

local MAX_DEPTH = 200 -- nesting, both ways: recursion stays far from any stack limit

J.null = setmetatable({}, { __name = "json.null", __tostring = function() return "null" end })

---------------------------------------------------------------- encoding
local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
  ["\r"] = "\\r", ["\t"] = "\\t" }
local function quote(s, path)
  -- JSON text is Unicode: bytes that are not UTF-8 would make a file no
  -- reader (this one included) accepts
  if not utf8.len(s) then error(("json.encode: string at %s is not valid UTF-8"):format(path), 0) end
  return '"' .. s:gsub('[%z\1-\31"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = #t
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n and (n > 0 or next(t) == nil and getmetatable(t) == J.array_mt)
end
J.array_mt = { __name = "json.array" }
-- an empty table that encodes as [] instead of {}
function J.array(t) return setmetatable(t or {}, J.array_mt) end

local function encode(v, out, path, opts, seen)
  local tv = type(v)
  if v == nil or v == J.null then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = tostring(v)
  elseif tv == "number" then
    if math.type(v) == "integer" then
      out[#out + 1] = ("%d"):format(v)
    elseif v ~= v or v == math.huge or v == -math.huge then
      if not opts.lenient then error(("json.encode: %s at %s is not representable in JSON"):format(v, path), 0) end
      out[#out + 1] = v ~= v and '"nan"' or v > 0 and '"inf"' or '"-inf"'
    else
      local s = ("%.17g"):format(v)
      if tonumber(("%.15g"):format(v)) == v then s = ("%.15g"):format(v) end
      if not s:find("[.eEn]") then s = s .. ".0" end
      out[#out + 1] = s
    end
  elseif tv == "string" then
    out[#out + 1] = quote(v, path)
  elseif tv == "table" and getmetatable(v) == nil or getmetatable(v) == J.array_mt then
    if seen[v] then error(("json.encode: cycle at %s"):format(path), 0) end
    seen.depth = (seen.depth or 0) + 1
    if seen.depth > MAX_DEPTH then error(("json.encode: nesting deeper than %d at %s"):format(MAX_DEPTH, path:sub(1, 60)), 0) end
    seen[v] = true
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out, path .. "[" .. i .. "]", opts, seen)
      end
      out[#out + 1] = "]"
    else
      local keys, printed = {}, {}
      for k in pairs(v) do
        if type(k) ~= "string" and math.type(k) ~= "integer" then
          error(("json.encode: key %s at %s is not a string"):format(tostring(k), path), 0)
        end
        local ks = tostring(k)
        if printed[ks] then error(("json.encode: key %q at %s would be written twice"):format(ks, path), 0) end
        printed[ks] = true
        keys[#keys + 1] = ks
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = quote(k, path)
        out[#out + 1] = ":"
        local val = v[k]
        if val == nil then val = v[math.tointeger(tonumber(k))] end
        encode(val, out, path .. "." .. k, opts, seen)
      end
      out[#out + 1] = "}"
    end
    seen[v] = nil
    seen.depth = seen.depth - 1
  elseif opts.lenient then
    out[#out + 1] = quote(tostring(v), path)
  else
    error(("json.encode: a %s at %s has no JSON form"):format(tv, path), 0)
  end
end

-- encode(value[, {lenient = true}]): lenient writes functions and userdata
-- as their tostring and non-finite numbers as the strings "inf", "-inf" and
-- "nan" instead of failing.
function J.encode(v, opts)
  local out = {}
  encode(v, out, "$", opts or {}, {})
  return table.concat(out)
end

---------------------------------------------------------------- decoding
local function fail(s, i, what)
  local line = select(2, s:sub(1, i - 1):gsub("\n", "")) + 1
  error(("invalid JSON at byte %d (line %d): %s"):format(i, line, what), 0)
end

local function ws(s, i) return s:find("[^ \t\r\n]", i) or #s + 1 end

local decode_value

local function decode_string(s, i)
  -- s:sub(i, i) == '"'
  local parts, j = {}, i + 1
  while true do
    local a = s:find('["\\%z\1-\31]', j)
    if not a then fail(s, i, "unterminated string") end
    local raw = s:sub(j, a - 1)
    -- strict UTF-8: no overlong forms, no encoded surrogates, nothing past U+10FFFF
    local ok, bad_at = utf8.len(raw)
    if not ok then fail(s, j + bad_at - 1, "invalid UTF-8 in string") end
    parts[#parts + 1] = raw
    local c = s:sub(a, a)
    if c == '"' then return table.concat(parts), a + 1 end
    if c ~= "\\" then fail(s, a, "control character in string") end
    local e = s:sub(a + 1, a + 1)
    local simple = ({ ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" })[e]
    if simple then
      parts[#parts + 1] = simple
      j = a + 2
    elseif e == "u" then
      local hex = s:match("^%x%x%x%x", a + 2)
      if not hex then fail(s, a, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      j = a + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = s:match("^\\u(%x%x%x%x)", j)
        lo = lo and tonumber(lo, 16)
        if not lo or lo < 0xDC00 or lo > 0xDFFF then fail(s, a, "unpaired surrogate") end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
        j = j + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        fail(s, a, "unpaired surrogate")
      end
      parts[#parts + 1] = utf8.char(cp)
    else
      fail(s, a, "bad escape \\" .. e)
    end
  end
end

local function decode_number(s, i)
  -- -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?
  local j = i
  if s:sub(j, j) == "-" then j = j + 1 end
  local int = s:match("^0", j) or s:match("^[1-9]%d*", j)
  if not int then fail(s, i, "bad number") end
  j = j + #int
  local frac = s:match("^%.%d+", j)
  if s:sub(j, j) == "." and not frac then fail(s, i, "bad number") end
  j = j + (frac and #frac or 0)
  local exp = s:match("^[eE][-+]?%d+", j)
  if s:match("^[eE]", j) and not exp then fail(s, i, "bad number") end
  j = j + (exp and #exp or 0)
  local num = s:sub(i, j - 1)
  -- Lua reads an integer numeral that fits int64 as an integer and any
  -- other as the nearest double: beyond int64 a float, as serde_json does
  local v = tonumber(num)
  if (frac or exp) then v = v + 0.0 end
  if v == math.huge or v == -math.huge then fail(s, i, "number out of range of a double") end
  return v, j
end

function decode_value(s, i, depth)
  if depth > MAX_DEPTH then fail(s, i, ("nesting deeper than %d"):format(MAX_DEPTH)) end
  i = ws(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local obj = {}
    i = ws(s, i + 1)
    if s:sub(i, i) == "}" then return obj, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then fail(s, i, "expected a string key") end
      local k
      k, i = decode_string(s, i)
      i = ws(s, i)
      if s:sub(i, i) ~= ":" then fail(s, i, "expected ':'") end
      if obj[k] ~= nil then fail(s, i, ("duplicate key %q"):format(k)) end
      local v
      v, i = decode_value(s, i + 1, depth + 1)
      obj[k] = v
      i = ws(s, i)
      c = s:sub(i, i)
      if c == "}" then return obj, i + 1 end
      if c ~= "," then fail(s, i, "expected ',' or '}'") end
      i = ws(s, i + 1)
    end
  elseif c == "[" then
    local arr = J.array()
    i = ws(s, i + 1)
    if s:sub(i, i) == "]" then return arr, i + 1 end
    while true do
      local v
      v, i = decode_value(s, i, depth + 1)
      arr[#arr + 1] = v
      i = ws(s, i)
      c = s:sub(i, i)
      if c == "]" then return arr, i + 1 end
      if c ~= "," then fail(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif c == "-" or c:match("%d") then
    return decode_number(s, i)
  elseif s:sub(i, i + 3) == "true" then
    return true, i + 4
  elseif s:sub(i, i + 4) == "false" then
    return false, i + 5
  elseif s:sub(i, i + 3) == "null" then
    return J.null, i + 4
  end
  fail(s, i, c == "" and "unexpected end" or ("unexpected %q"):format(c))
end

-- decode(s) -> value; raises "invalid JSON at byte N (line L): ..." on any
-- malformed input, trailing garbage included. null decodes as json.null.
function J.decode(s)
  if type(s) ~= "string" then error("invalid JSON: expected a string, got " .. type(s), 0) end
  local v, i = decode_value(s, 1, 0)
  i = ws(s, i)
  if i <= #s then fail(s, i, "trailing characters") end
  return v
end

return J
