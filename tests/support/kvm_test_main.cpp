// KVM tests: real boots of the guest. ctest runs each case through support/kvm-launch, which finds KVM
// (this host's, or the nested VM's) or skips the case with its reason. Run by hand on a host without a
// usable /dev/kvm, the binary says so and exits 77 rather than failing every case; listing its cases
// needs no KVM.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/process.hpp"

#include <cstdio>
#include <cstring>

int main(int argc, char* argv[])
{
    bool listing = false;
    for (int i = 1; i < argc; ++i)
        listing = listing || std::strncmp(argv[i], "--list", 6) == 0;
    if (!listing && !test_support::kvm_available()) {
        std::printf("cpuplug-skip: /dev/kvm is not usable here (ctest runs these cases in the nested VM: "
                    "docs/development.md)\n");
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
