return {
  summary = "list the OpenCL devices (MOONFLOW_DEVICE picks one by index or name)",
  usage = [[usage: scripts/moonflow devices

Lists every OpenCL device with its index; the one moonflow uses is marked *.
Pick another with MOONFLOW_DEVICE=INDEX or MOONFLOW_DEVICE=NAME-SUBSTRING.]],
  run = function()
    local mf = require "moonflow"
    local cur = mf.device()
    for _, d in ipairs(mf.devices()) do
      local mark = (d.name == cur.name and d.platform == cur.platform) and "*" or " "
      print(("%s %d  %-40s %-4s %s  fp64=%s  %.1f GiB  %d CUs"):format(mark, d.index, d.name, d.type,
        d.platform, tostring(d.fp64), d.global_memory / 2 ^ 30, d.compute_units))
    end
    return 0
  end,
}
