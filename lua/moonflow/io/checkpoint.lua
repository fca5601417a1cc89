-- mf.io checkpoints: save and load whole training states (model, EMA,
-- optimizer, RNGs, step, config) as one safetensors file.
local core = require "moonflow.core"
local J = require "moonflow.json"
local U = require "moonflow.io.util"
local ST = require "moonflow.io.safetensors"

local IO = {}
local is_tensor = require("moonflow.autograd").is_tensor
local shape_str = U.shape_str

-- A checkpoint is one safetensors file. Each entry of the saved table becomes
-- a metadata string holding its JSON: objects with state_dict() store
-- {"__state__": tree}, generators and Rngs {"__rng__": state}, other values
-- themselves; tensors inside any of them are stored as tensors named by their
-- dotted path and referenced as {"__tensor__": name}. So a module's
-- parameters are the tensors model.<name> (PyTorch's names: blocks.0.linear.weight),
-- an EMA's averaged weights ema.<name> with the same names and shapes, an
-- optimizer's flat state optim.exp_avg, ...
local FORMAT = "moonflow.checkpoint/2"
-- Format 1 (moonflow before 0-based names) is still read: its Sequential and
-- ModuleList indices counted from 1, and its EMA held one flat shadow.
local LEGACY = "moonflow.checkpoint/1"

-- a format-1 state dict key with its all-digit segments counted from 0
-- ("blocks.1.linear.weight" -> "blocks.0.linear.weight"); moonflow named
-- only Sequential and ModuleList children with digits
local function renumber(key)
  if type(key) ~= "string" then return key end
  local parts = {}
  for seg in (key .. "."):gmatch("([^.]*)%.") do
    local n = seg:match("^%d+$") and math.tointeger(tonumber(seg))
    parts[#parts + 1] = n and n >= 1 and tostring(n - 1) or seg
  end
  return table.concat(parts, ".")
end

-- v has a method of that name; looked up without indexing v itself, since
-- Rngs makes a new generator for any name it is indexed with
local function has(v, method)
  if type(v) ~= "table" then return false end
  if type(rawget(v, method)) == "function" then return true end
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return false end
  local idx = rawget(mt, "__index")
  if type(idx) == "table" then return type(idx[method]) == "function" end
  return type(rawget(mt, method)) == "function"
end

local function pack(v, name, tensors, seen)
  if is_tensor(v) then
    if tensors[name] then error(("two tensors would be named %q"):format(name), 0) end
    tensors[name] = v
    return { __tensor__ = name }
  end
  if type(v) == "table" and getmetatable(v) == nil then
    seen = seen or {}
    if seen[v] then error(("a cycle at %s"):format(name), 0) end
    seen[v] = true
    local out = {}
    for k, x in pairs(v) do out[k] = pack(x, name .. "." .. tostring(k), tensors, seen) end
    seen[v] = nil
    return out
  end
  return v
end

-- save(path, {model = net, ema = ema, optim = opt, step = n, rngs = rngs, config = ...})
function IO.save(path, ck)
  if type(path) ~= "string" then error("moonflow.io.save: path must be a string", 2) end
  if type(ck) ~= "table" then error(("moonflow.io.save: expected a table of entries, got %s"):format(type(ck)), 2) end
  local tensors, meta = {}, { ["moonflow.format"] = FORMAT }
  for key, v in pairs(ck) do
    if type(key) ~= "string" or key == "moonflow.format" then
      error(("moonflow.io.save: entry key %s is not a usable name"):format(tostring(key)), 2)
    end
    local ok, js = pcall(function()
      local tree
      if has(v, "state_dict") then
        tree = { __state__ = pack(v:state_dict(), key, tensors) }
      elseif has(v, "get_state") then
        tree = { __rng__ = v:get_state() }
      else
        tree = pack(v, key, tensors)
      end
      return J.encode(tree, { lenient = true })
    end)
    if not ok then error(("moonflow.io.save: entry %q: %s"):format(key, js), 2) end
    meta[key] = js
  end
  return ST.save_safetensors(path, tensors, meta)
end

local function unpack_tree(v, tensors, used, where)
  if v == J.null then return nil end
  if type(v) ~= "table" then return v end
  if v.__tensor__ ~= nil then
    local t = tensors[v.__tensor__]
    if not t then error(("%s refers to tensor %q, which the file lacks"):format(where, tostring(v.__tensor__)), 0) end
    used[v.__tensor__] = true
    return t
  end
  local out = {}
  for k, x in pairs(v) do out[k] = unpack_tree(x, tensors, used, where) end
  return out
end

-- Checks that `loaded` has exactly the tensors of `own` (same paths, same
-- shapes); returns nil or a message.
local function compare(own, loaded, path, problems)
  if is_tensor(own) then
    if not is_tensor(loaded) then
      problems[#problems + 1] = ("%s is missing"):format(path)
    elseif shape_str(core.shape(own)) ~= shape_str(core.shape(loaded)) then
      problems[#problems + 1] = ("%s has shape %s in the file but %s in the target"):format(
        path, shape_str(core.shape(loaded)), shape_str(core.shape(own)))
    end
    return
  end
  if type(own) ~= "table" then return end
  loaded = type(loaded) == "table" and not is_tensor(loaded) and loaded or {}
  for k, x in pairs(own) do compare(x, loaded[k], path .. "." .. tostring(k), problems) end
  local function any_tensor(v)
    if is_tensor(v) then return true end
    if type(v) ~= "table" then return false end
    for _, x in pairs(v) do if any_tensor(x) then return true end end
    return false
  end
  for k, x in pairs(loaded) do
    if own[k] == nil and any_tensor(x) then
      problems[#problems + 1] = ("%s.%s is in the file but not in the target"):format(path, tostring(k))
    end
  end
end

-- A deep copy of a target's state, to put back if applying a later target
-- fails (only for targets that cannot check a state before applying it).
local function snapshot(obj)
  local function copy(v)
    if is_tensor(v) then return core.clone(v) end
    if type(v) ~= "table" then return v end
    local out = {}
    for k, x in pairs(v) do out[k] = copy(x) end
    return out
  end
  if has(obj, "state_dict") then return copy(obj:state_dict()) end
  if has(obj, "get_state") then return copy(obj:get_state()) end
end

-- load(path[, targets]) -> checkpoint table. targets maps entry names to
-- objects to restore in place ({model = net, ema = ema, optim = opt, rngs = rngs}).
-- Every target checks its entry first (names, dtypes, shapes, counts, RNG
-- states; objects with _prepare_load / _prepare_state check without
-- changing anything), then all are applied: a failed load changes nothing.
-- Entries without a target come back as plain values (state dicts as tables
-- of tensors). An entry "step" must be an integer >= 0.
function IO.load(path, targets)
  local tensors, meta = ST.load_safetensors(path)
  local function bad(fmt, ...) error(("moonflow.io.load: %s: " .. fmt):format(path, ...), 0) end
  local format = meta["moonflow.format"]
  if format ~= FORMAT and format ~= LEGACY then
    bad("not a moonflow checkpoint (metadata moonflow.format is %s)", tostring(format))
  end
  local legacy = format == LEGACY
  local ck, kinds, used = {}, {}, {}
  for key, js in pairs(meta) do
    if key ~= "moonflow.format" then
      local ok, tree = pcall(J.decode, js)
      if not ok then bad("entry %q: %s", key, tree) end
      local ok2, v = pcall(unpack_tree, tree, tensors, used, ("entry %q"):format(key))
      if not ok2 then bad("%s", v) end
      if type(v) == "table" and v.__state__ ~= nil then
        ck[key], kinds[key] = v.__state__, "state"
        if legacy and type(v.__state__) == "table" then
          local renamed = {}
          for k, x in pairs(v.__state__) do
            local nk = renumber(k)
            if renamed[nk] ~= nil then bad("entry %q: two keys become %q", key, nk) end
            renamed[nk] = x
          end
          ck[key] = renamed
        end
      elseif type(v) == "table" and v.__rng__ ~= nil then
        ck[key], kinds[key] = v.__rng__, "rng"
      else
        ck[key] = v
      end
    end
  end
  for name in pairs(tensors) do
    if not used[name] then bad("tensor %q belongs to no entry", name) end
  end
  if ck.step ~= nil and (math.type(ck.step) ~= "integer" or ck.step < 0) then
    bad("entry \"step\" must be an integer >= 0, got %s", tostring(ck.step))
  end
  if targets == nil then return ck end
  if type(targets) ~= "table" then bad("targets must be a table, got %s", type(targets)) end
  local keys = {}
  for key in pairs(targets) do
    if type(key) ~= "string" then bad("target key %s is not a string", tostring(key)) end
    keys[#keys + 1] = key
  end
  table.sort(keys)
  -- check everything first
  local checked, unchecked = {}, {}
  for _, key in ipairs(keys) do
    local obj = targets[key]
    if ck[key] == nil then bad("the checkpoint has no entry %q", key) end
    local method, prepare
    if has(obj, "load_state_dict") then
      if kinds[key] ~= "state" then bad("entry %q is not a state dict", key) end
      -- (a format-1 entry is left to the target's own check: its EMA is a
      -- flat shadow where the target now names its weights)
      if has(obj, "state_dict") and not (legacy and has(obj, "_prepare_load")) then
        local problems = {}
        compare(obj:state_dict(), ck[key], key, problems)
        if #problems > 0 then
          table.sort(problems)
          bad("entry %q does not match its target: %s", key, table.concat(problems, "; "))
        end
      end
      method, prepare = "load_state_dict", "_prepare_load"
    elseif has(obj, "set_state") then
      if kinds[key] ~= "rng" or type(ck[key]) ~= "table" then bad("entry %q is not a generator state", key) end
      method, prepare = "set_state", "_prepare_state"
    else
      bad("target %q has neither load_state_dict nor set_state", key)
    end
    if has(obj, prepare) then
      local ok, apply = pcall(obj[prepare], obj, ck[key])
      if not ok then bad("entry %q: %s", key, tostring(apply):gsub("^[^:]*:%d+: ", "")) end
      checked[#checked + 1] = apply
    else
      unchecked[#unchecked + 1] = { key = key, obj = obj, method = method }
    end
  end
  -- targets that cannot check first are applied first, each one rolled back
  -- if a later one fails
  for i, u in ipairs(unchecked) do
    u.saved = snapshot(u.obj)
    local ok, err = pcall(u.obj[u.method], u.obj, ck[u.key])
    if not ok then
      for j = i, 1, -1 do
        local r = unchecked[j]
        if r.saved ~= nil then pcall(r.obj[r.method], r.obj, r.saved) end
      end
      bad("entry %q: %s", u.key, tostring(err):gsub("^[^:]*:%d+: ", ""))
    end
  end
  for _, apply in ipairs(checked) do apply() end
  return ck
end

return IO
