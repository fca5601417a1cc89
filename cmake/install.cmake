# `cmake --install`: the C library with its headers and moonflow.pc, the Lua
# module (core.so and the lua/moonflow tree) in Lua 5.4's standard module
# dirs under the prefix, and the launcher bin/moonflow.
#
# Debian's lua5.4 searches PREFIX/share/lua/5.4 for Lua files and
# PREFIX/lib/lua/5.4 (/usr/local) or /usr/lib/<multiarch>/lua/5.4 (/usr) for
# C modules; GNUInstallDirs' LIBDIR is lib under /usr/local and
# lib/<multiarch> under /usr, so LIBDIR/lua/5.4 matches both. LuaRocks sets
# MOONFLOW_INSTALL_LMOD/CMOD to the rock's own dirs.
include(GNUInstallDirs)
set(MOONFLOW_INSTALL_LMOD "${CMAKE_INSTALL_DATADIR}/lua/5.4" CACHE STRING
  "where the lua/moonflow tree is installed (relative to the prefix, or absolute)")
set(MOONFLOW_INSTALL_CMOD "${CMAKE_INSTALL_LIBDIR}/lua/5.4" CACHE STRING
  "where moonflow/core.so is installed (relative to the prefix, or absolute)")
option(MOONFLOW_INSTALL_CLIB "install libmoonflow, its headers and moonflow.pc" ON)
option(MOONFLOW_INSTALL_LAUNCHER "install the bin/moonflow launcher" ON)

install(TARGETS moonflow_core LIBRARY DESTINATION "${MOONFLOW_INSTALL_CMOD}/moonflow" COMPONENT lua)
install(DIRECTORY "${CMAKE_SOURCE_DIR}/lua/moonflow" DESTINATION "${MOONFLOW_INSTALL_LMOD}"
  COMPONENT lua FILES_MATCHING PATTERN "*.lua")

if(MOONFLOW_INSTALL_CLIB)
  install(TARGETS moonflow LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT clib)
  # the headers include each other by plain name: one folder keeps them together
  file(GLOB MF_HEADERS "${CMAKE_SOURCE_DIR}/src/*.h")
  install(FILES ${MF_HEADERS} DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/moonflow" COMPONENT clib)
  configure_file("${CMAKE_SOURCE_DIR}/cmake/moonflow.pc.in" "${CMAKE_BINARY_DIR}/moonflow.pc" @ONLY)
  install(FILES "${CMAKE_BINARY_DIR}/moonflow.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
    COMPONENT clib)
endif()

if(MOONFLOW_INSTALL_LAUNCHER)
  # the launcher finds the Lua dirs relative to itself, so the installed
  # tree can be moved as a whole
  function(mf_from_bindir out dir)
    if(IS_ABSOLUTE "${dir}")
      set(${out} "${dir}" PARENT_SCOPE)
    else()
      file(RELATIVE_PATH rel "/p/${CMAKE_INSTALL_BINDIR}" "/p/${dir}")
      set(${out} "$here/${rel}" PARENT_SCOPE)
    endif()
  endfunction()
  mf_from_bindir(MF_LMOD "${MOONFLOW_INSTALL_LMOD}")
  mf_from_bindir(MF_CMOD "${MOONFLOW_INSTALL_CMOD}")
  configure_file("${CMAKE_SOURCE_DIR}/cmake/moonflow.sh.in" "${CMAKE_BINARY_DIR}/moonflow.sh" @ONLY)
  install(PROGRAMS "${CMAKE_BINARY_DIR}/moonflow.sh" DESTINATION "${CMAKE_INSTALL_BINDIR}"
    RENAME moonflow COMPONENT launcher)
endif()
