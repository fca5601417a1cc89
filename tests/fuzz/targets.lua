-- The loaders under fuzz: name -> {run = function(path, bytes), ok = error-message pattern}.
-- run raises a Lua error for a bad input; a message that does not match `ok` (one that
-- does not name the moonflow function) is reported as an unclear error.
local mf = require "moonflow"
local core = require "moonflow.core"
local J = require "moonflow.json"

local T = {}

-- the checkpoint's targets: a small model, its EMA and optimizer, named generators
-- (tests/fuzz/gen_corpus.lua saves the seed checkpoints from the same setup)
function T.training_setup(seed)
  local rngs = mf.Rngs(seed)
  local net = mf.nn.VelocityMLP { dim = 2, hidden = 4, depth = 2, rngs = rngs }
  local opt = mf.optim.AdamW(net, { lr = 1e-2 })
  local ema = mf.optim.EMA(net, { decay = 0.9 })
  return { rngs = rngs, net = net, opt = opt, ema = ema }
end

-- every number the targets hold, as one string: a failed load must leave it unchanged
local function snapshot(s)
  local parts = {}
  local function add(v)
    if mf.is_tensor(v) then
      parts[#parts + 1] = core.tobytes(v)
    elseif type(v) == "table" then
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      for _, k in ipairs(keys) do
        parts[#parts + 1] = k
        add(v[k] ~= nil and v[k] or v[math.tointeger(tonumber(k))])
      end
    else
      parts[#parts + 1] = tostring(v)
    end
  end
  add(s.net:state_dict())
  add(s.opt:state_dict())
  add(s.ema:state_dict())
  add(s.rngs:get_state())
  return table.concat(parts, "\0")
end

local MF_ERR = "^[^\n]-moonflow%.[%w_.]+"

-- a printable excerpt of an input for a finding's message
local function excerpt(bytes, from, n)
  return '"' .. bytes:sub(from, from + n - 1):gsub('[^ -~]', function(c) return ("\\%d"):format(c:byte()) end) .. '"'
end

T.safetensors = {
  ok = MF_ERR,
  run = function(path) mf.io.load_safetensors(path) end,
}

local setup, before
T.checkpoint = {
  ok = MF_ERR,
  run = function(path)
    setup = setup or T.training_setup(7)
    before = before or snapshot(setup)
    local ok, err = pcall(mf.io.load, path, { model = setup.net, ema = setup.ema, optim = setup.opt,
      rngs = setup.rngs })
    local after = snapshot(setup)
    if after ~= before then
      before = after -- report once per change, then compare against the new state
      if not ok then
        return nil, ("garbage: a failed load changed its targets: %s"):format(tostring(err))
      end
    end
    if not ok then error(err, 0) end
  end,
}

-- The header numpy itself would accept (numpy reads it with ast.literal_eval and
-- requires exactly these keys, a tuple shape, a bool order): a Python dict literal with
-- 'descr' (a string), 'fortran_order' (True or False) and 'shape' (a tuple of ints,
-- "(n,)" for one dim), each once, then spaces and a newline. nil when valid, or why not.
local function npy_header_problem(h)
  local body = h:match("^%s*{(.*)}[ \t\f\r\n]*$")
  if not body then
    local tail = h:match("^%s*{.*}(.-)$")
    if tail then return ("bytes after the dict: %s"):format(excerpt(tail:match("[^ \t\f\r\n].*"), 1, 12)) end
    return "not one dict literal"
  end
  local seen, rest = {}, body
  while true do
    rest = rest:match("^%s*(.*)$")
    if rest == "" then break end
    local q, key, after = rest:match("^(['\"])([%w_]+)%1%s*:%s*(.*)$")
    if not key then return ("bad entry near %q"):format(rest:sub(1, 20)) end
    if seen[key] then return ("key %s twice"):format(key) end
    local value
    if key == "descr" then value, rest = after:match("^(['\"][^'\"]*['\"])%s*(.*)$")
    elseif key == "fortran_order" then value, rest = after:match("^(%a+)%s*(.*)$")
      if value ~= "True" and value ~= "False" then value = nil end
    elseif key == "shape" then value, rest = after:match("^(%b())%s*(.*)$")
      local inner = value and value:sub(2, -2):match("^%s*(.-)%s*$")
      if inner and inner ~= "" and not (inner:match("^%d+%s*,$") or inner:match("^%d+%s*,%s*[%d%s,]*%d%s*,?$")) then
        value = nil -- "(3)" is an int in Python, not a tuple
      end
    else return ("unknown key %s"):format(key) end
    if not value then return ("bad value of %s"):format(key) end
    seen[key] = true
    if rest == "" then break end
    if rest:sub(1, 1) ~= "," then return ("no comma after %s"):format(key) end
    rest = rest:sub(2)
  end
  for _, k in ipairs { "descr", "fortran_order", "shape" } do
    if not seen[k] then return "no " .. k end
  end
end

T.npy = {
  ok = MF_ERR,
  run = function(path, bytes)
    mf.io.load_npy(path)
    local major = bytes:byte(7)
    local hlen, start = string.unpack(major == 1 and "<I2" or "<I4", bytes, 9), major == 1 and 11 or 13
    local why = npy_header_problem(bytes:sub(start, start + hlen - 1))
    if why then
      return nil, ("garbage: accepted an npy header numpy rejects (%s) -- %s"):format(why, excerpt(bytes, start, 72))
    end
  end,
}

-- A valid file may announce much more data than it takes compressed: an accepted
-- one may use memory in proportion to the elements its header announced (the source
-- bytes, the f32 values on the host, on the device and in the write's staging copy).
T.idx = {
  ok = MF_ERR,
  run = function(path)
    local t = mf.io.load_idx(path)
    return nil, nil, 24 * t:numel()
  end,
}

-- whole-file read with gzip inflation (src/io_gzip.c through core.read_file)
T.gzip = {
  ok = MF_ERR,
  run = function(path) -- the inflated bytes, in C and as a Lua string, with the buffer's growth
    return nil, nil, 3 * #core.read_file(path)
  end,
}

-- an accepted document must survive encode -> decode unchanged
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b or (a ~= a and b ~= b) end
  if getmetatable(a) ~= getmetatable(b) then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

T.json = {
  ok = "^invalid JSON",
  run = function(_, bytes)
    local v = J.decode(bytes)
    local ok, again = pcall(function() return J.decode(J.encode(v, { lenient = true })) end)
    if not ok then return nil, ("garbage: accepted document does not re-encode: %s -- %s"):format(again, excerpt(bytes, 1, 60)) end
    if not same(v, again) then
      return nil, ("garbage: accepted document changes on encode -> decode -- %s"):format(excerpt(bytes, 1, 60))
    end
  end,
}

return T
