return {
  summary = "list the OpenCL devices (MOONFLOW_DEVICE picks one by index or name)",
  usage = [[usage: scripts/moonflow devices

Lists every OpenCL device with its index; the one moonflow uses is marked *.
Pick another with MOONFLOW_DEVICE=INDEX or MOONFLOW_DEVICE=NAME-SUBSTRING.
Works whatever MOONFLOW_DEVICE says: when it matches no device, the list has
no mark and stderr says so.]],
  run = function(args)
    local _, pos = require("moonflow.app.options").parse("devices", args or {}, {})
    if pos[1] then error(("devices: unexpected argument %q (it takes none)"):format(pos[1]), 0) end
    local mf = require "moonflow"
    local list = mf.devices() -- enumerates without starting a device
    local ok, cur = pcall(mf.device)
    local err = not ok and cur or nil
    if not ok then cur = nil end
    for _, d in ipairs(list) do
      local mark = (cur and d.name == cur.name and d.platform == cur.platform) and "*" or " "
      print(("%s %d  %-40s %-4s %s  fp64=%s  %.1f GiB  %d CUs"):format(mark, d.index, d.name, d.type,
        d.platform, tostring(d.fp64), d.global_memory / 2 ^ 30, d.compute_units))
    end
    local want = os.getenv("MOONFLOW_DEVICE") or ""
    if not cur and want == "" then
      io.stderr:write("moonflow: ", tostring(err), "\n")
    elseif not cur then
      io.stderr:write(("moonflow: MOONFLOW_DEVICE=%s matches none of these devices; "
        .. "pick one by index or by a substring of its name\n"):format(want))
    end
    return 0
  end,
}
