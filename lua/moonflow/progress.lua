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
-- tty (default: whether stdout is a terminal), out (a file, default io.stdout)
function P.new(opts)
  local self = setmetatable({}, P)
  self.total = opts.total
  self.every = math.max(1, opts.every or 100)
  self.step0 = opts.start or 0
  self.tty = opts.tty
  if self.tty == nil then self.tty = core.isatty(1) end
  self.out = opts.out or io.stdout
  self.t0 = core.clock()
  self.last_t, self.last_step = self.t0, self.step0
  self.acc, self.count = nil, 0
  self.loss = nil
  return self
end

-- Adds a scalar loss tensor to the device-side running sum; prints every
-- `every` steps (the only read-back). Returns the averaged loss when printed.
function P:update(step, loss)
  self.acc = self.acc and core.binary("add", self.acc, loss) or core.clone(loss)
  self.count = self.count + 1
  if step % self.every ~= 0 and step ~= self.total then return nil end
  self.loss = core.item(self.acc) / self.count
  self.acc, self.count = nil, 0
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

return P
