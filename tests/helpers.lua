-- Shared test helpers: Lua-double references and tolerant comparisons.
local H = {}

-- Flattens a nested table in C order.
function H.flatten(t, out)
  out = out or {}
  if type(t) ~= "table" then out[#out + 1] = t; return out end
  for _, v in ipairs(t) do H.flatten(v, out) end
  return out
end

-- Asserts |a - e| <= atol + rtol |e| elementwise over nested tables or numbers.
function H.close(actual, expected, rtol, atol, what)
  rtol, atol = rtol or 1e-5, atol or 1e-6
  local a, e = H.flatten(actual), H.flatten(expected)
  if #a ~= #e then
    error(("%s: %d values, expected %d"):format(what or "close", #a, #e), 2)
  end
  for i = 1, #a do
    local d = math.abs(a[i] - e[i])
    if not (d <= atol + rtol * math.abs(e[i])) and not (a[i] ~= a[i] and e[i] ~= e[i]) then
      error(("%s: element %d is %.17g, expected %.17g (|diff| %.3g)"):format(what or "close", i, a[i], e[i], d), 2)
    end
  end
  return true
end

-- Deterministic pseudo-random nested table of the given shape (values in [lo, hi)).
function H.rand_table(shape, seed, lo, hi)
  lo, hi = lo or -1, hi or 1
  local state = seed or 1
  local function nxt()
    state = (state * 6364136223846793005 + 1442695040888963407)
    return lo + (hi - lo) * (((state >> 11) & ((1 << 53) - 1)) / 2 ^ 53)
  end
  local function build(d)
    if d > #shape then return nxt() end
    local t = {}
    for i = 1, shape[d] do t[i] = build(d + 1) end
    return t
  end
  return build(1)
end

-- Applies f elementwise over nested tables (any number of same-shaped inputs).
function H.map(f, ...)
  local args = { ... }
  if type(args[1]) ~= "table" then return f(...) end
  local out = {}
  for i = 1, #args[1] do
    local sub = {}
    for k = 1, #args do sub[k] = type(args[k]) == "table" and args[k][i] or args[k] end
    out[i] = H.map(f, table.unpack(sub, 1, #args))
  end
  return out
end

-- Asserts that fn raises an error whose message contains every given fragment.
function H.errors(fn, ...)
  local ok, err = pcall(fn)
  if ok then error("expected an error, none was raised", 2) end
  err = tostring(err)
  for _, frag in ipairs { ... } do
    if not err:find(frag, 1, true) then
      error(("error message %q lacks %q"):format(err, frag), 2)
    end
  end
  return err
end

-- A new empty folder under the system's temporary directory.
function H.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  require("moonflow.core").fs_mkdir_p(dir)
  return dir
end

-- Writes the bytes s to path (returns path); reads a whole file back.
function H.spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  return path
end
function H.slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

return H
