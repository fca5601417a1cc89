-- Helpers shared by the mf.io readers and writers.
local U = {}

U.MAX_NUMEL = (1 << 31) - 1 -- kernels index elements with int

-- "{2, 3}"; any value prints (shapes from files are shown before they are trusted)
function U.shape_str(s)
  local parts = {}
  for i, d in ipairs(s) do parts[i] = math.type(d) and tostring(d) or ("<%s>"):format(type(d)) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- the whole file as a string; errors name fn and the file
function U.read_all(fn, path)
  if type(path) ~= "string" then error(("moonflow.io.%s: path must be a string, got %s"):format(fn, type(path)), 3) end
  local f, err = io.open(path, "rb")
  if not f then error(("moonflow.io.%s: cannot open %s"):format(fn, err), 3) end
  local s = f:read("a")
  f:close()
  return s
end

return U
