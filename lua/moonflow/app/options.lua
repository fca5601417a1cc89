-- Command-line options checked before a command does anything: every
-- `--name value` against a table of known options with their types and
-- ranges; a typo names the nearest known option (edit distance).
local O = {}

-- Edit distance between a and b, case-insensitive: insertions, deletions,
-- substitutions and swaps of neighbours ("trian" is one edit from "train")
function O.distance(a, b)
  a, b = a:lower(), b:lower()
  local d = { [0] = {} }
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    d[i] = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[#a][#b]
end

-- The known name closest to `word`, when close enough to be a typo (at most
-- a third of its letters wrong, at least one allowed); nil otherwise.
function O.nearest(word, names)
  local best, bd
  for _, n in ipairs(names) do
    local d = O.distance(word, n)
    if not bd or d < bd or (d == bd and n < best) then best, bd = n, d end
  end
  if best and bd <= math.max(1, #word // 3) then return best end
  return nil
end

-- " (did you mean X?)" or ""
function O.hint(word, names, prefix)
  local n = O.nearest(word, names)
  return n and (" (did you mean %s%s?)"):format(prefix or "", n) or ""
end

-- kinds of values: each returns the parsed value or nil, and says what it wants
O.int = function(lo, hi)
  return {
    want = ("an integer in [%d, %d]"):format(lo, hi),
    parse = function(s)
      local v = s:match("^%s*[+-]?%d+%s*$") and math.tointeger(tonumber(s))
      if v and v >= lo and v <= hi then return v end
    end,
  }
end
-- a finite number in [lo, hi]
O.number = function(lo, hi)
  return {
    want = ("a number in [%g, %g]"):format(lo, hi),
    parse = function(s)
      local v = tonumber(s)
      if v and v == v and v >= lo and v <= hi then return v end
    end,
  }
end
O.string = { want = "a non-empty string", parse = function(s) if s ~= "" then return s end end }
-- one of choices, matched without case, "_" or "-"
O.choice = function(choices)
  return {
    want = "one of " .. table.concat(choices, ", "),
    choices = choices,
    parse = function(s)
      local k = s:lower():gsub("[_-]", "")
      for _, c in ipairs(choices) do if c:lower() == k then return c end end
    end,
  }
end
O.flag = { flag = true }

-- parse(cmd, args, spec) -> options, positional arguments.
-- spec: name -> kind (O.flag, O.int(lo, hi), O.string, O.choice{...}).
function O.parse(cmd, args, spec)
  local names = {}
  for k in pairs(spec) do names[#names + 1] = k end
  table.sort(names)
  local o, pos = {}, {}
  local function fail(fmt, ...)
    error(("%s: " .. fmt):format(cmd, ...), 0)
  end
  local i = 1
  while i <= #args do
    local a = args[i]
    local key, inline = a:match("^%-%-([^=]+)=(.*)$")
    key = key or a:match("^%-%-(.+)$")
    if key then
      local kind = spec[key]
      if not kind then fail("unknown option --%s%s", key, O.hint(key, names, "--")) end
      if kind.flag then
        if inline then fail("--%s takes no value", key) end
        o[key] = true
      else
        local v = inline
        if v == nil then
          i = i + 1
          v = args[i]
        end
        if v == nil then fail("--%s needs a value", key) end
        local x = kind.parse(v)
        if x == nil then
          fail("--%s must be %s, got %q%s", key, kind.want, v, kind.choices and O.hint(v, kind.choices) or "")
        end
        o[key] = x
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return o, pos
end

return O
