# kvship_options: the INTERFACE target every kvship target links PRIVATE (warnings, defines, sanitizers).
add_library(kvship_options INTERFACE)
add_library(kvship::options ALIAS kvship_options)
target_compile_features(kvship_options INTERFACE cxx_std_20)
target_compile_options(kvship_options INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual -Wimplicit-fallthrough
    # g++ 12 at -O2 pairs the operator delete of Asio's coroutine frames with the aligned_alloc inside
    # Asio's recycling allocator and calls them mismatched: a false positive, both sides are Asio's.
    -Wno-mismatched-new-delete)
target_compile_definitions(kvship_options INTERFACE
    BOOST_ASIO_NO_DEPRECATED
    BOOST_ASIO_DISABLE_BOOST_COROUTINE
    BOOST_ASIO_SEPARATE_COMPILATION
    BOOST_BEAST_SEPARATE_COMPILATION
    RAPIDJSON_HAS_STDSTRING=1)
if(KVSHIP_WERROR)
    target_compile_options(kvship_options INTERFACE -Werror)
endif()
if(KVSHIP_SANITIZE)
    target_compile_options(kvship_options INTERFACE -fsanitize=${KVSHIP_SANITIZE} -fno-omit-frame-pointer
                                                    -fno-sanitize-recover=all)
    target_link_options(kvship_options INTERFACE -fsanitize=${KVSHIP_SANITIZE})
endif()

# RapidJSON ships no target; this one carries the include path and the define every TU must agree on.
find_package(RapidJSON CONFIG REQUIRED)
add_library(kvship_rapidjson INTERFACE)
add_library(kvship::rapidjson ALIAS kvship_rapidjson)
target_include_directories(kvship_rapidjson SYSTEM INTERFACE ${RAPIDJSON_INCLUDE_DIRS})
