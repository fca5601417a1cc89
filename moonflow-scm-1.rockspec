-- `luarocks --lua-version 5.4 make` builds this from the source tree with
-- CMake (the kernels are embedded at build time) and installs the module
-- (moonflow/core.so with the C core linked in, the lua/moonflow tree) and
-- the bin/moonflow launcher; libmoonflow and its headers are left to
-- `cmake --install` (see README "Install").
rockspec_format = "3.0"
package = "moonflow"
version = "scm-1"
source = { url = "git+file:///moonflow" } -- `luarocks make` builds the checkout it runs in
description = {
  summary = "Diffusion and flow-matching on OpenCL devices, driven from Lua",
  detailed = "Tensors with autograd, networks, interfaces (SiT, EDM, MeanFlow, REPA) and samplers over a C core with embedded OpenCL kernels.",
}
dependencies = { "lua >= 5.4, < 5.5" }
build_dependencies = {}
-- Debian: ocl-icd-opencl-dev opencl-headers libclblast-dev libpng-dev zlib1g-dev libzip-dev
external_dependencies = {
  OPENCL = { header = "CL/cl.h" },
  CLBLAST = { header = "clblast_c.h" },
  PNG = { header = "png.h" },
  ZLIB = { header = "zlib.h" },
  LIBZIP = { header = "zip.h" },
  LAPACKE = { header = "lapacke.h" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    LUA_INCLUDE_DIR = "$(LUA_INCDIR)",
    MOONFLOW_INSTALL_LMOD = "$(LUADIR)",
    MOONFLOW_INSTALL_CMOD = "$(LIBDIR)",
    MOONFLOW_INSTALL_CLIB = "OFF",
  },
}
