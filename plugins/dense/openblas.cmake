# OpenBLAS for the plugins that multiply matrices (Dense, Conv2D), shared by
# their CMakeLists. The OpenMP build of Debian's OpenBLAS
# (libopenblas-openmp-dev) is preferred: it runs on the same libgomp thread
# pool as the plugins, follows omp_set_num_threads and runs single-threaded
# inside our own parallel regions, so nothing oversubscribes. Debian may also
# have the pthread build installed and selected by update-alternatives, so the
# library is taken from its openblas-openmp directory and that directory goes
# into the plugins' RUNPATH.
include_guard(GLOBAL)

set(_nnp_blas_arch "${CMAKE_LIBRARY_ARCHITECTURE}")
find_library(NNP_OPENBLAS_LIB NAMES openblas
  PATHS /usr/lib/${_nnp_blas_arch}/openblas-openmp NO_DEFAULT_PATH)
find_path(NNP_OPENBLAS_INCLUDE NAMES cblas.h
  PATHS /usr/include/${_nnp_blas_arch}/openblas-openmp NO_DEFAULT_PATH)
if(NOT NNP_OPENBLAS_LIB OR NOT NNP_OPENBLAS_INCLUDE)
  message(WARNING "OpenMP build of OpenBLAS not found (install libopenblas-openmp-dev); "
                  "falling back to the default libopenblas")
  find_library(NNP_OPENBLAS_LIB NAMES openblas REQUIRED)
  find_path(NNP_OPENBLAS_INCLUDE NAMES cblas.h
    PATHS /usr/include/${_nnp_blas_arch}/openblas-pthread /usr/include/openblas REQUIRED)
endif()
get_filename_component(NNP_OPENBLAS_DIR "${NNP_OPENBLAS_LIB}" DIRECTORY)

# nnp_use_openblas(target): link target with OpenBLAS (cblas.h, RUNPATH).
function(nnp_use_openblas target)
  target_include_directories(${target} SYSTEM PRIVATE ${NNP_OPENBLAS_INCLUDE})
  target_link_libraries(${target} PRIVATE ${NNP_OPENBLAS_LIB})
  set_property(TARGET ${target} APPEND PROPERTY BUILD_RPATH "${NNP_OPENBLAS_DIR}")
  set_property(TARGET ${target} APPEND PROPERTY INSTALL_RPATH "${NNP_OPENBLAS_DIR}")
endfunction()
