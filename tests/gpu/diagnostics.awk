# oclgrind's log -> one block per distinct diagnostic (what, kernel, source line),
# with how many times it was reported. Messages are separated by empty lines.
function flush() {
  if (b == "") return
  if (!(k in seen)) { order[++n] = k; text[k] = b }
  seen[k]++
  b = ""; k = ""
}
length($0) == 0 { flush(); next }
{
  b = b (b == "" ? "" : "\n") $0
  line = $0
  gsub(/0x[0-9a-f]+/, "ADDR", line)
  gsub(/(Global|Local|Group)\([0-9,]+\)/, "", line)
  if (b == $0 || line ~ /Kernel:|At line/) k = k "|" line
}
END {
  flush()
  for (i = 1; i <= n; i++) print "[" seen[order[i]] "x] " text[order[i]] "\n"
}
