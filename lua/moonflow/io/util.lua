-- Helpers shared by the mf.io readers and writers.
local U = {}

U.MAX_NUMEL = (1 << 31) - 1 -- kernels index elements with int

-- "{2, 3}"; any value prints (shapes from files are shown before they are trusted)
function U.shape_str(s)
  local parts = {}
  for i, d in ipairs(s) do parts[i] = math.type(d) and tostring(d) or ("<%s>"):format(type(d)) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

return U
