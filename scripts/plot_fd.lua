-- FD against training step of image runs, from their evals.csv files (train
-- with eval_every): one picture with a line per run and the floor dashed, and
-- a Markdown table on stdout (FD and class accuracy of each run at each step).
--   scripts/moonflow run scripts/plot_fd.lua OUT.png LABEL=RUN/evals.csv ... [--eval NAME] [--x step|seconds] [--log]
-- e.g. docs/repa_fashion.png from fashion_sit and fashion_repa:
--   scripts/moonflow run scripts/plot_fd.lua docs/repa_fashion.png \
--     fashion_sit=runs/fashion_sit/evals.csv fashion_repa=runs/fashion_repa/evals.csv
local mf = require "moonflow"

local usage = "usage: scripts/moonflow run scripts/plot_fd.lua OUT.png LABEL=RUN/evals.csv ... [--eval NAME] "
  .. "[--x step|seconds] [--log]"
local function fail(fmt, ...) io.stderr:write(("plot_fd: " .. fmt .. "\n"):format(...)); os.exit(1) end

local args = { ... }
local out, runs, eval_name, xkey, log = nil, {}, nil, "step", false
local i = 1
while i <= #args do
  local a = args[i]
  if a == "--eval" then eval_name, i = args[i + 1], i + 1
  elseif a == "--x" then xkey, i = args[i + 1], i + 1
  elseif a == "--log" then log = true
  elseif not out then out = a
  else
    local label, path = a:match("^([^=]+)=(.+)$")
    if not label then fail("%s is not LABEL=PATH\n%s", a, usage) end
    runs[#runs + 1] = { label = label, path = path }
  end
  i = i + 1
end
if not out or #runs == 0 then fail(usage) end
if xkey ~= "step" and xkey ~= "seconds" then fail("--x must be step or seconds, got %s", tostring(xkey)) end

-- rows of one evals.csv (step,name,fd,floor,accuracy,seconds) of eval `name`
-- (default: the first name in the file)
local function read(path, name)
  local f = io.open(path)
  if not f then fail("cannot read %s", path) end
  local header = f:read("l")
  if header ~= "step,name,fd,floor,accuracy,seconds" then fail("%s is not an evals.csv (header %s)", path, header) end
  local rows = {}
  for line in f:lines() do
    local st, n, fd, fl, acc, sec = line:match("^(%d+),([^,]+),([^,]*),([^,]*),([^,]*),([^,]*)$")
    if not st then fail("%s: bad row %q", path, line) end
    name = name or n
    if n == name then
      rows[#rows + 1] = { step = tonumber(st), fd = tonumber(fd), floor = tonumber(fl), accuracy = tonumber(acc),
        seconds = tonumber(sec) }
    end
  end
  f:close()
  if #rows == 0 then fail("%s has no rows of eval %s", path, tostring(name)) end
  return rows, name
end

local series, floor, steps, by = {}, nil, {}, {}
for k, r in ipairs(runs) do
  local rows, name = read(r.path, eval_name)
  eval_name = eval_name or name
  local pts = {}
  by[k] = {}
  for _, row in ipairs(rows) do
    pts[#pts + 1] = { row[xkey], row.fd or 0 / 0 }
    floor = floor or row.floor
    if not by[k][row.step] then steps[#steps + 1] = row.step end
    by[k][row.step] = row
  end
  series[k] = { name = r.label, points = pts }
end
local seen, uniq = {}, {}
for _, s in ipairs(steps) do if not seen[s] then seen[s], uniq[#uniq + 1] = true, s end end
table.sort(uniq)

mf.plot.lines(out, series, {
  title = ("FD (%s) against training %s"):format(eval_name, xkey == "step" and "step" or "time"),
  xlabel = xkey == "step" and "training step" or "training seconds", ylabel = "FD", log = log,
  hlines = floor and { { y = floor, label = ("floor %.3f"):format(floor) } } or nil,
})

-- the table
local head, rule = { "step" }, { "---" }
for _, r in ipairs(runs) do
  head[#head + 1] = r.label .. " FD"
  head[#head + 1] = r.label .. " class acc."
  head[#head + 1] = r.label .. " time"
  rule[#rule + 1], rule[#rule + 2], rule[#rule + 3] = "---", "---", "---"
end
print("| " .. table.concat(head, " | ") .. " |")
print("|" .. table.concat(rule, "|") .. "|")
local function hms(s)
  if not s then return "—" end
  s = math.floor(s + 0.5)
  return ("%d:%02d"):format(s // 60, s % 60)
end
for _, st in ipairs(uniq) do
  local cells = { tostring(st) }
  for k in ipairs(runs) do
    local row = by[k][st]
    cells[#cells + 1] = row and row.fd and ("%.3f"):format(row.fd) or "—"
    cells[#cells + 1] = row and row.accuracy and ("%.1f%%"):format(100 * row.accuracy) or "—"
    cells[#cells + 1] = row and hms(row.seconds) or "—"
  end
  print("| " .. table.concat(cells, " | ") .. " |")
end
print(("floor %.3f; eval %s; picture %s"):format(floor or 0 / 0, eval_name, out))
