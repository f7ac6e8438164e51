# cmake -DEXE=<program> -DWORKDIR=<dir> [-DARGS=<a;b>] [-DEXPECT_FILE=<path;path>] -P run_example.cmake
# Runs an example in an emptied WORKDIR; fails if it exits non-zero or if an
# EXPECT_FILE is not there afterwards.
if(NOT EXE OR NOT WORKDIR)
  message(FATAL_ERROR "run_example.cmake: EXE and WORKDIR are required")
endif()
file(REMOVE_RECURSE ${WORKDIR})
file(MAKE_DIRECTORY ${WORKDIR})
execute_process(COMMAND ${EXE} ${ARGS} WORKING_DIRECTORY ${WORKDIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} exited with ${rc}")
endif()
foreach(f IN LISTS EXPECT_FILE)
  if(NOT EXISTS ${f})
    message(FATAL_ERROR "${EXE} did not write ${f}")
  endif()
endforeach()
