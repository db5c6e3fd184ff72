# What the Debian package (debian/, scripts/package.sh) needs from the build:
# the version header, the installed binary, and the man pages and bash
# completion generated from the command tree by the built binary itself
# (`tandem help-man`, `tandem help-completion`: hidden commands), so they
# cannot drift from the commands and options they describe.

# The version and git commit for `tandem --version`, rewritten at every build.
set(TANDEM_GENERATED_DIR ${CMAKE_BINARY_DIR}/generated)
add_custom_target(tandem_version_header
  COMMAND ${CMAKE_COMMAND} -DVERSION=${PROJECT_VERSION} -DSOURCE_DIR=${CMAKE_SOURCE_DIR}
          -DOUT=${TANDEM_GENERATED_DIR}/tandem_version.h -P ${CMAKE_SOURCE_DIR}/cmake/version.cmake
  BYPRODUCTS ${TANDEM_GENERATED_DIR}/tandem_version.h
  COMMENT "tandem version header")
add_dependencies(tandem tandem_version_header)
target_include_directories(tandem PRIVATE ${TANDEM_GENERATED_DIR})

# build/man/*.1, *.5 and build/man/tandem.bash-completion (`cmake --build build
# --target man`; part of `all` only for the package build, TANDEM_MAN_ALL=ON).
option(TANDEM_MAN_ALL "build the man pages and bash completion with the default target" OFF)
set(TANDEM_MAN_PAGES tandem.1 tandem-agent.1 tandem-cluster.1 tandem-sandbox.1 tandem-pki.1
    tandem-ui.1 tandem.yaml.5)
set(man_outputs)
foreach(page ${TANDEM_MAN_PAGES})
  list(APPEND man_outputs ${CMAKE_BINARY_DIR}/man/${page})
endforeach()
add_custom_command(OUTPUT ${man_outputs} ${CMAKE_BINARY_DIR}/man/tandem.bash-completion
  COMMAND $<TARGET_FILE:tandem> help-man --out ${CMAKE_BINARY_DIR}/man
          --readme ${CMAKE_SOURCE_DIR}/README.md
  COMMAND $<TARGET_FILE:tandem> help-completion > ${CMAKE_BINARY_DIR}/man/tandem.bash-completion
  DEPENDS tandem ${CMAKE_SOURCE_DIR}/README.md
  COMMENT "man pages and bash completion from tandem's command tree")
if(TANDEM_MAN_ALL)
  add_custom_target(man ALL DEPENDS ${man_outputs})
else()
  add_custom_target(man DEPENDS ${man_outputs})
endif()

include(GNUInstallDirs)
install(TARGETS tandem RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
