# Run as a test per binary: every case name must reach Catch2 intact when ctest runs the case on its own.
# A ';' splits the name into a CMake list, a '\' is an escape in Catch2's test specs (Catch2's CMake module
# escapes only ',' '[' and ']'), a '"' quotes, a leading '-' makes Catch2 read it as an option (the name
# "--help ..." would print the help and pass without running anything), and a leading '~', '#' or '*'
# negates, names a file or is a wildcard.
execute_process(COMMAND ${BINARY} --list-test-names-only OUTPUT_VARIABLE names)
string(FIND "${names}" ";" semicolon)
string(REGEX MATCH "(^|\n)[-~#*][^\n]*" dash "${names}")
if(NOT semicolon EQUAL -1)
    message(FATAL_ERROR "a case name in ${BINARY} contains ';', which ctest would split:\n${names}")
endif()
string(REGEX MATCH "[^\n]*[\\\"][^\n]*" escape "${names}")
if(escape)
    message(FATAL_ERROR "a case name in ${BINARY} contains a backslash or a quote, which Catch2 would read:\n${escape}")
endif()
if(dash)
    message(FATAL_ERROR "a case name in ${BINARY} starts with '-', '~', '#' or '*', which Catch2 would read:${dash}")
endif()
