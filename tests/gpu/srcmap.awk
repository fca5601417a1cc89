# Adds "= cl/<file>:<line>" after each "At line N ... of input.cl" of oclgrind's
# diagnostics. First file: moonflow's program as cmake/embed.cmake writes it
# (each source after a `#line 1 "<file>"` marker); second: the diagnostics.
FNR == NR {
  if (match($0, /^#line 1 "[^"]+"$/)) { start[++n] = FNR; name[n] = substr($0, 10, length($0) - 10) }
  next
}
{
  print
  if ($0 ~ /input\.cl/ && match($0, /At line [0-9]+/)) {
    l = substr($0, RSTART + 8, RLENGTH - 8) + 0
    for (i = n; i >= 1; i--) if (start[i] < l) { print "\t= " name[i] ":" l - start[i]; break }
  }
}
