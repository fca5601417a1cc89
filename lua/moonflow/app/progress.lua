-- Training progress: a bar on a terminal, plain lines otherwise. Losses are
-- summed on the device and read back only when a line is printed.
local core = require "moonflow.core"

local P = {}
P.__index = P

local function hms(s)
  if s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  local h, m = s // 3600, (s % 3600) // 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s % 60) end
  return ("%d:%02d"):format(m, s % 60)
end
P.hms = hms

-- opts: total (steps), every (print period), start (first step, for resumes),
-- state (from :state(), for resumes), tty (default: whether stdout is a
-- terminal), out (a file, default io.stdout)
function P.new(opts)
  local self = setmetatable({}, P)
  self.total = opts.total
  self.every = math.max(1, opts.every or 100)
  self.step0 = opts.start or 0
  self.tty = opts.tty
  if self.tty == nil then self.tty = core.isatty(1) end
  self.out = opts.out or io.stdout
  local st = opts.state or {}
  -- elapsed time goes on from the stored one
  self.t0 = core.clock() - (st.elapsed or 0)
  self.last_t, self.last_step = core.clock(), self.step0
  -- the running sum of the window (every*k, every*(k+1)] that holds start
  self.acc, self.count = st.sum, st.count or 0
  self.loss = nil
  return self
end

-- What a checkpoint keeps so that a resumed run prints the same windows:
-- the window's device-side loss sum (a tensor, bit-exact), its step count
-- and the elapsed time (`elapsed`, default now).
function P:state(elapsed)
  return { sum = self.acc, count = self.count, elapsed = elapsed or self:elapsed() }
end

-- A stored state checked before use: nil (older checkpoints: a fresh window)
-- or {sum = scalar tensor or nil, count >= 0 (0 without sum), elapsed >= 0}.
function P.check_state(st, where)
  if st == nil then return nil end
  local function bad(what)
    error(("moonflow.progress: %s: bad progress state: %s"):format(where, what), 0)
  end
  if type(st) ~= "table" then bad("not a table") end
  local count, elapsed = st.count, st.elapsed
  if math.type(count) ~= "integer" or count < 0 then bad("count " .. tostring(count)) end
  if type(elapsed) ~= "number" or not (elapsed >= 0 and elapsed < math.huge) then bad("elapsed " .. tostring(elapsed)) end
  if (count > 0) ~= (st.sum ~= nil) then bad("a loss sum must go with a positive count") end
  if st.sum ~= nil and (not require("moonflow.autograd").is_tensor(st.sum) or core.numel(st.sum) ~= 1
      or core.dtype(st.sum) == "i32") then
    bad("the loss sum is not a one-element float tensor")
  end
  return { sum = st.sum, count = count, elapsed = elapsed }
end

-- Adds a scalar loss tensor to the device-side running sum; prints every
-- `every` steps and at the last one (the only read-backs). Returns the
-- averaged loss when printed. Windows end at multiples of `every` only (the
-- last step prints its partial window and keeps it), so every run of one
-- config, resumed or not, averages the same steps.
function P:update(step, loss)
  self.acc = self.acc and core.binary("add", self.acc, loss) or core.clone(loss)
  self.count = self.count + 1
  if step % self.every ~= 0 and step ~= self.total then return nil end
  self.loss = core.item(self.acc) / self.count
  if step % self.every == 0 then self.acc, self.count = nil, 0 end
  local now = core.clock()
  local rate = (step - self.last_step) / math.max(now - self.last_t, 1e-9)
  self.last_t, self.last_step = now, step
  self.rate = rate
  local eta = (self.total - step) / math.max(rate, 1e-9)
  if self.tty then
    local width = 24
    local filled = math.floor(width * step / self.total + 0.5)
    self.out:write(("\r[%s%s] %d/%d  loss %.4f  %.1f steps/s  ETA %s "):format(
      ("="):rep(filled), (" "):rep(width - filled), step, self.total, self.loss, rate, hms(eta)))
    if step == self.total then self.out:write("\n") end
  else
    self.out:write(("step %d/%d  loss %.5f  %.1f steps/s  elapsed %s  ETA %s\n"):format(
      step, self.total, self.loss, rate, hms(now - self.t0), hms(eta)))
  end
  self.out:flush()
  return self.loss
end

function P:elapsed() return core.clock() - self.t0 end

-- A sampler's progress (its callback, called with {i = step, steps = n}):
-- on a terminal a bar redrawn in place; otherwise a line at most every
-- `every` seconds (default 5), so short runs print nothing and logs stay short.
-- opts: label, tty (default: whether stderr is a terminal), out (default
-- io.stderr), every, clock (a function returning seconds, for tests), sync
-- (default core.synchronize: the device queue runs ahead of the host, so the
-- step is counted when its work is done).
local Ticker = {}
Ticker.__index = Ticker

function P.ticker(opts)
  opts = opts or {}
  local t = setmetatable({ label = opts.label or "sampling", out = opts.out or io.stderr, every = opts.every or 5,
    clock = opts.clock or core.clock, sync = opts.sync or core.synchronize, drawn = false }, Ticker)
  t.tty = opts.tty
  if t.tty == nil then t.tty = core.isatty(2) end
  t.t0 = t.clock()
  t.last = t.t0
  return t
end

function Ticker:__call(info)
  self.sync()
  local i, n, now = info.i, info.steps, self.clock()
  if self.tty then
    local width = 24
    local filled = math.floor(width * i / n + 0.5)
    self.out:write(("\r%s [%s%s] %d/%d  %s "):format(self.label, ("="):rep(filled), (" "):rep(width - filled), i, n,
      hms(now - self.t0)))
    self.drawn = true
  elseif now - self.last >= self.every then
    self.last = now
    self.out:write(("%s: step %d/%d  elapsed %s  ETA %s\n"):format(self.label, i, n, hms(now - self.t0),
      hms((now - self.t0) * (n - i) / i)))
  else
    return
  end
  self.out:flush()
end

-- ends the bar's line on a terminal
function Ticker:done()
  if self.drawn then
    self.out:write("\n")
    self.out:flush()
    self.drawn = false
  end
end

return P
