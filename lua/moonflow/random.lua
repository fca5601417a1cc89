-- Generators over the Philox kernels: (seed, offset) is the whole state,
-- and each draw advances the offset by the counters it used.
--
-- Splitting guarantee: a draw of n elements takes element k from counter
-- offset + k // w (w = 4 for f32 and i32, 2 for f64) and advances the offset
-- by ceil(n / w). The numbers never depend on how the device splits a draw
-- into work-items, and draws whose sizes are multiples of w concatenate to
-- exactly one draw of the total size (8 then 8 == 16). A size that is not a
-- multiple of w leaves the rest of its last counter unused.
local core = require "moonflow.core"

local R = {}
local Generator = {}
Generator.__index = Generator
Generator.__name = "moonflow.Generator"
Generator.__tostring = function(g) return ("Generator(seed=%d, offset=%d)"):format(g.seed, g.offset) end

local function check_seed(seed, fn)
  if math.type(seed) ~= "integer" then
    error(("moonflow.%s: seed must be an integer, got %s"):format(fn, tostring(seed)), 3)
  end
end

function R.Generator(seed)
  seed = seed or 0
  check_seed(seed, "Generator")
  return setmetatable({ seed = seed, offset = 0 }, Generator)
end

-- Row shards. A draw with rows = {first, total} (first 0-based) and shape
-- {count, ...} returns rows first+1 .. first+count of the {total, ...} draw
-- that the generator would make, bit for bit, and advances the offset as
-- that whole draw does; only the counters of those rows (and at most w - 1
-- elements before them, to start on a counter) are drawn. A generator put in
-- shard mode by g:shard(first, count, total) draws every {count, ...} shape
-- that way (data parallelism: rank r draws its rows of the global batch);
-- rows = false draws the shape as given even then.
local function width(kind, dtype) return (kind ~= "randint" and dtype == "f64") and 2 or 4 end

local function shape_fail(g, shape, why)
  error(("moonflow.Generator: %s (shape {%s})"):format(why, type(shape) == "table" and table.concat(shape, ", ") or tostring(shape)), 4)
end

local function draw_rows(g, kind, shape, a, b, dtype, first, total)
  local count = shape[1]
  if math.type(count) ~= "integer" then shape_fail(g, shape, "a row draw needs a leading dim") end
  if math.type(first) ~= "integer" or math.type(total) ~= "integer" or first < 0 or first + count > total then
    shape_fail(g, shape, ("rows [%s, %s + %s) do not lie in a draw of %s rows"):format(
      tostring(first), tostring(first), tostring(count), tostring(total)))
  end
  local inner = 1
  for i = 2, #shape do inner = inner * shape[i] end
  local w = width(kind, dtype)
  local e0 = first * inner                   -- the shard's first element in the whole draw
  local skip = e0 % w                        -- elements of its first counter before it
  local n = count * inner + skip
  local t = core.rand(kind, { n }, g.seed, g.offset + e0 // w, a, b, dtype)
  if skip > 0 then t = core.clone(core.narrow(t, 1, skip + 1, count * inner)) end
  g.offset = g.offset + (total * inner + w - 1) // w
  return core.reshape(t, shape)
end

local function draw(g, kind, shape, a, b, dtype, rows)
  if type(shape) == "number" then shape = { shape } end
  if rows == nil and g._shard then
    local s = g._shard
    if type(shape) ~= "table" or shape[1] ~= s.count then
      shape_fail(g, shape, ("in shard mode (rows %d..%d of %d) every draw has %d rows; pass rows = false for a whole draw"):format(
        s.first + 1, s.first + s.count, s.total, s.count))
    end
    rows = { s.first, s.total }
  end
  if rows then
    if type(shape) ~= "table" then shape_fail(g, shape, "a row draw needs a shape table") end
    return draw_rows(g, kind, shape, a, b, dtype, rows.first or rows[1], rows.total or rows[2])
  end
  local t, off = core.rand(kind, shape, g.seed, g.offset, a, b, dtype)
  g.offset = off
  return t
end

-- g:shard(first, count, total): later draws of {count, ...} give rows
-- first+1 .. first+count (first 0-based) of {total, ...} draws; g:shard(nil) ends it.
function Generator:shard(first, count, total)
  if first == nil then self._shard = nil; return self end
  for _, v in ipairs { first, count, total } do
    if math.type(v) ~= "integer" then
      error(("moonflow.Generator:shard: first, count and total must be integers, got %s, %s, %s"):format(
        tostring(first), tostring(count), tostring(total)), 2)
    end
  end
  if first < 0 or count < 0 or first + count > total then
    error(("moonflow.Generator:shard: rows [%d, %d) do not lie in [0, %d)"):format(first, first + count, total), 2)
  end
  self._shard = { first = first, count = count, total = total }
  return self
end

-- the shard {first (0-based), count, total} or nil
function Generator:sharding() return self._shard end

local function opt(o, k, i, default)
  if o == nil or type(o) == "string" then return default end
  local v = o[k]
  if v == nil then v = o[i] end
  if v == nil then return default end
  return v
end

-- the float dtype of opts: "f64" or {dtype = "f64"} (nil: f32)
local function float_dtype(o, fn)
  local dt = o
  if type(o) == "table" then dt = o.dtype
  elseif o ~= nil and type(o) ~= "string" then
    error(("moonflow.%s: options must be a dtype string or a table, got %s"):format(fn, tostring(o)), 3)
  end
  if dt ~= nil and dt ~= "f32" and dt ~= "f64" then
    error(("moonflow.%s: random floats are f32 or f64, got dtype %s"):format(fn, tostring(dt)), 3)
  end
  return dt
end

-- the rows option: nil, false or {first, total}
local function rows_of(o) if type(o) == "table" then return o.rows end end

-- uniform in [low, high); o: {low, high, dtype = ..., rows = ...} or a dtype string
function Generator:uniform(shape, o, fn)
  local dt = float_dtype(o, fn or "uniform")
  return draw(self, "uniform", shape, opt(o, "low", 1, 0), opt(o, "high", 2, 1), dt, rows_of(o))
end

-- N(mean, std^2) by Box-Muller; o: {mean, std, dtype = ..., rows = ...} or a dtype string
function Generator:normal(shape, o, fn)
  local dt = float_dtype(o, fn or "normal")
  return draw(self, "normal", shape, opt(o, "mean", 1, 0), opt(o, "std", 2, 1), dt, rows_of(o))
end

-- integers in [low, high), i32; o: {rows = ...}
function Generator:randint(shape, low, high, o)
  if high == nil then low, high = 0, low end
  if math.type(low) ~= "integer" or math.type(high) ~= "integer" then
    error(("moonflow.randint: bounds must be integers, got %s and %s"):format(tostring(low), tostring(high)), 2)
  end
  return draw(self, "randint", shape, low, high, nil, rows_of(o))
end

-- a random permutation of 0..n-1 (i32): argsort of uniform keys on the host
function Generator:permutation(n)
  local keys = core.flat(self:uniform({ n }, { rows = false }))
  local idx = {}
  for i = 1, n do idx[i] = i end
  table.sort(idx, function(a, b) return keys[a] < keys[b] end)
  for i = 1, n do idx[i] = idx[i] - 1 end
  return core.tensor(idx, "i32")
end

function Generator:get_state() return { seed = self.seed, offset = self.offset } end

-- Checks a generator state {seed = integer, offset = integer} and nothing
-- else (the offset is a 64-bit counter: negative integers stand for the
-- upper half); returns nil or the problem.
local function state_problem(s)
  if type(s) ~= "table" then
    return ("expected {seed = integer, offset = integer}, got %s"):format(type(s))
  end
  if math.type(s.seed) ~= "integer" then return ("seed must be an integer, got %s"):format(tostring(s.seed)) end
  if math.type(s.offset) ~= "integer" then
    return ("offset must be an integer, got %s"):format(tostring(s.offset))
  end
  for k in pairs(s) do
    if k ~= "seed" and k ~= "offset" then return ("unexpected key %s"):format(tostring(k)) end
  end
end

-- _prepare_state(s) -> apply(): checks s without changing the generator
-- (mf.io.load checks every target before it applies any).
function Generator:_prepare_state(s)
  local why = state_problem(s)
  if why then error("moonflow.Generator:set_state: " .. why, 0) end
  local seed, offset = s.seed, s.offset
  return function() self.seed, self.offset = seed, offset end
end

function Generator:set_state(s)
  local ok, apply = pcall(self._prepare_state, self, s)
  if not ok then error(apply, 2) end
  apply()
end

function Generator:manual_seed(seed)
  check_seed(seed, "manual_seed")
  self.seed, self.offset = seed, 0
  return self
end

-- A generator whose seed derives from (seed, name): splitmix64 of both.
local function mix(x)
  x = x + 0x9E3779B97F4A7C15
  x = (x ~ (x >> 30)) * 0xBF58476D1CE4E5B9
  x = (x ~ (x >> 27)) * 0x94D049BB133111EB
  return x ~ (x >> 31)
end
local function derive(seed, name)
  local h = seed
  for i = 1, #name do h = mix(h ~ name:byte(i)) end
  return mix(h)
end

-- named independent streams: rngs.params, rngs.time, rngs.noise, ...
local Rngs = {}
Rngs.__name = "moonflow.Rngs"
-- Rngs(seed=0, streams: noise, params)
Rngs.__tostring = function(self)
  local names = {}
  for k in pairs(self) do if k ~= "_seed" then names[#names + 1] = k end end
  table.sort(names)
  return ("Rngs(seed=%d%s)"):format(rawget(self, "_seed"), #names > 0 and ", streams: " .. table.concat(names, ", ") or "")
end
Rngs.__index = function(self, name)
  if type(name) ~= "string" then return nil end
  local m = rawget(Rngs, name)
  if m then return m end
  local g = R.Generator(derive(rawget(self, "_seed"), name))
  rawset(self, name, g)
  return g
end

function R.Rngs(seed)
  seed = seed or 0
  check_seed(seed, "Rngs")
  return setmetatable({ _seed = seed }, Rngs)
end

function Rngs.get_state(self)
  local s = { _seed = self._seed }
  for k, v in pairs(self) do if k ~= "_seed" then s[k] = v:get_state() end end
  return s
end

-- a stream name is any string but the seed's key and the names of Rngs'
-- own fields (rngs.set_state is a method, rngs.__index a metamethod)
local function stream_name(k)
  return type(k) == "string" and k ~= "" and k ~= "_seed" and rawget(Rngs, k) == nil
end

-- Checks {_seed = integer?, name = generator state, ...} whole before any
-- stream changes; the seed is restored too, so streams first used after a
-- load derive from the saved seed.
function Rngs._prepare_state(self, s)
  local function bad(fmt, ...) error(("moonflow.Rngs:set_state: " .. fmt):format(...), 0) end
  if type(s) ~= "table" then bad("expected a table of generator states, got %s", type(s)) end
  if s._seed ~= nil and math.type(s._seed) ~= "integer" then bad("_seed must be an integer, got %s", tostring(s._seed)) end
  local names = {}
  for k, v in pairs(s) do
    if k ~= "_seed" then
      if not stream_name(k) then bad("%q cannot name a stream", tostring(k)) end
      local why = state_problem(v)
      if why then bad("stream %q: %s", k, why) end
      names[#names + 1] = k
    end
  end
  return function()
    if s._seed ~= nil then rawset(self, "_seed", s._seed) end
    for _, k in ipairs(names) do self[k]:set_state(s[k]) end
  end
end

function Rngs.set_state(self, s)
  local ok, apply = pcall(Rngs._prepare_state, self, s)
  if not ok then error(apply, 2) end
  apply()
end

R.default = R.Generator(0)
function R.manual_seed(seed) R.default:manual_seed(seed) end
function R.rand(shape, o) return R.default:uniform(shape, o, "rand") end
function R.randn(shape, o) return R.default:normal(shape, o, "randn") end
function R.randint(shape, low, high) return R.default:randint(shape, low, high) end

return R
