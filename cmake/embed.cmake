# Concatenates the kernel sources, in the order given, into one OpenCL C text:
#   cmake -DOUT=kernels_src.h -DOUT_CL=kernels_all.cl -DROOT=<source dir> "-DSRCS=a;b" -P embed.cmake
# OUT_CL is that text as a file (what the compiler check in tests/ reads), OUT
# the same text as a C string. Each file starts with a #line marker naming it
# relative to ROOT, so compiler messages point at cl/<file>:<line>.
set(text "")
foreach(f ${SRCS})
  file(READ ${f} body)
  file(RELATIVE_PATH rel ${ROOT} ${f})
  string(APPEND text "#line 1 \"${rel}\"\n${body}")
  if(NOT body MATCHES "\n$")
    string(APPEND text "\n")
  endif()
endforeach()
file(WRITE ${OUT_CL}.tmp "${text}")
file(COPY_FILE ${OUT_CL}.tmp ${OUT_CL} ONLY_IF_DIFFERENT)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\"\n\"" text "${text}")
file(WRITE ${OUT}.tmp "/* generated from the cl/ sources by cmake/embed.cmake */\nstatic const char mf_kernel_source[] =\n\"${text}\";\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
