# Adds "= cl/<file>:<line>" after each "At line N ... of input.cl" of oclgrind's
# diagnostics. First file: moonflow's program as cmake/embed.cmake concatenates it
# (each source after a "/* ---- <absolute path>.cl ---- */" line); second: the diagnostics.
FNR == NR {
  if (match($0, /^\/\* ---- \/.*\.cl ---- \*\/$/)) { start[++n] = FNR; name[n] = substr($0, 9, length($0) - 16) }
  next
}
{
  print
  if (match($0, /At line [0-9]+/)) {
    l = substr($0, RSTART + 8, RLENGTH - 8) + 0
    for (i = n; i >= 1; i--) if (start[i] < l) { sub(/.*\/cl\//, "cl/", name[i]); print "\t= " name[i] ":" l - start[i]; break }
  }
}
