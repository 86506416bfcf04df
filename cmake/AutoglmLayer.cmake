# One static library per layer folder. Sources are globbed so that adding a file needs no CMake edit.
# Files named *_avx2.cpp / *_avx512.cpp are compiled for that instruction set only; the dispatcher
# decides at run time whether to call them (DESIGN.md: chosen once at start-up).
set(AUTOGLM_AVX2_FLAGS -mavx2 -mfma -mf16c)
set(AUTOGLM_AVX512_FLAGS -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq
    -mavx512vnni -mavx512bf16
    # GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_*; GCC bug 105593).
    -Wno-maybe-uninitialized)
if(AUTOGLM_EMULATE_AVX512)
  # The same sources for AVX2, their AVX-512 intrinsics from SIMDe. -Wno-psabi: GCC warns that
  # passing __m512 by value without AVX512F has another ABI; every caller is built the same way.
  set(AUTOGLM_AVX512_FLAGS ${AUTOGLM_AVX2_FLAGS} -Wno-psabi)
endif()

# Gives each *_avx2.cpp / *_avx512.cpp of the list its instruction-set flags.
function(autoglm_isa_flags)
  foreach(src IN LISTS ARGN)
    if(src MATCHES "_avx512\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${AUTOGLM_AVX512_FLAGS}")
    elseif(src MATCHES "_avx2\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${AUTOGLM_AVX2_FLAGS}")
    endif()
  endforeach()
endfunction()

function(autoglm_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${name}/*.cpp")
  if(NOT sources)  # a layer still empty: headers only
    add_library(autoglm_${name} INTERFACE)
    target_include_directories(autoglm_${name} INTERFACE "${PROJECT_SOURCE_DIR}/src")
    target_link_libraries(autoglm_${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(autoglm_${name} STATIC ${sources})
  target_include_directories(autoglm_${name} PUBLIC "${PROJECT_SOURCE_DIR}/src")
  target_compile_options(autoglm_${name} PRIVATE ${AUTOGLM_WARNINGS})
  target_link_libraries(autoglm_${name} PUBLIC ${ARG_DEPS})
  autoglm_isa_flags(${sources})
endfunction()

# One GoogleTest executable per layer folder under tests/.
function(autoglm_test_dir name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${name}/*.cpp")
  if(NOT sources)
    return()
  endif()
  add_executable(test_${name} ${sources})
  target_compile_options(test_${name} PRIVATE ${AUTOGLM_WARNINGS})
  target_link_libraries(test_${name} PRIVATE ${ARG_DEPS} autoglm_test_support GTest::gtest_main)
  autoglm_isa_flags(${sources})
  gtest_discover_tests(test_${name} DISCOVERY_TIMEOUT 60
    PROPERTIES ENVIRONMENT "AUTOGLM_FIXTURES=${AUTOGLM_FIXTURES_DIR}"
               LABELS ${name}
               SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endfunction()
