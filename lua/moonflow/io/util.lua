-- Helpers shared by the mf.io readers and writers.
local U = {}

U.MAX_NUMEL = (1 << 31) - 1 -- kernels index elements with int

function U.shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

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
