// KVM tests: real boots of the guest. Without a usable /dev/kvm they exit 77, which ctest reports as
// skipped rather than passed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/process.hpp"

#include <cstdio>

int main(int argc, char* argv[])
{
    if (!test_support::kvm_available()) {
        std::fprintf(stderr, "skipping: /dev/kvm is not usable here\n");
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
