# Interface targets that carry the project's compile options; host targets link them PRIVATE.

add_library(cpuplug_options INTERFACE)
add_library(cpuplug::options ALIAS cpuplug_options)
target_compile_features(cpuplug_options INTERFACE cxx_std_20)

add_library(cpuplug_warnings INTERFACE)
add_library(cpuplug::warnings ALIAS cpuplug_warnings)
target_compile_options(cpuplug_warnings INTERFACE
    $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
        -Woverloaded-virtual -Wdouble-promotion -Wimplicit-fallthrough -Wformat=2>
    $<$<AND:$<BOOL:${CPUPLUG_WERROR}>,$<COMPILE_LANGUAGE:C,CXX>>:-Werror>)

# Host-only: sanitizers. Linked by every host target (libraries, vmm, tests), never by the guest.
add_library(cpuplug_host INTERFACE)
add_library(cpuplug::host ALIAS cpuplug_host)
target_link_libraries(cpuplug_host INTERFACE cpuplug_options cpuplug_warnings)
if(CPUPLUG_SANITIZE)
    set(_san "-fsanitize=${CPUPLUG_SANITIZE}")
    target_compile_options(cpuplug_host INTERFACE
        $<$<COMPILE_LANGUAGE:C,CXX>:${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all>)
    target_link_options(cpuplug_host INTERFACE ${_san})
    if(CPUPLUG_SANITIZE MATCHES "thread")
        # Boost.Asio uses std::atomic_thread_fence, which TSan does not model; GCC says so with -Wtsan.
        target_compile_options(cpuplug_host INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-tsan>)
    endif()
endif()

# Freestanding flags shared by the guest kernel and the guest build of hotplug/.
# No SSE/x87 (the emulator on nested PVM traps xsave and friends at CPL0), no red zone (interrupts),
# no stack protector or unwind tables (no runtime to back them), small code model at 1 MiB.
add_library(cpuplug_freestanding INTERFACE)
add_library(cpuplug::freestanding ALIAS cpuplug_freestanding)
target_compile_features(cpuplug_freestanding INTERFACE cxx_std_20)
target_compile_options(cpuplug_freestanding INTERFACE
    -ffreestanding -fno-exceptions -mno-red-zone -mgeneral-regs-only
    -mno-sse -mno-mmx -mno-80387 -fno-pic -fno-pie -mcmodel=small -fno-stack-protector
    -fno-asynchronous-unwind-tables -fno-unwind-tables -fcf-protection=none -fno-common
    -fno-omit-frame-pointer -O2 -ffile-prefix-map=${CMAKE_SOURCE_DIR}/=
    $<$<COMPILE_LANGUAGE:CXX>:-fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit -Wno-volatile>
    -Wall -Wextra -Wshadow $<$<BOOL:${CPUPLUG_WERROR}>:-Werror>)
target_compile_definitions(cpuplug_freestanding INTERFACE CPUPLUG_GUEST=1)
