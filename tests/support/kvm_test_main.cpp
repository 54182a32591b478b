// KVM tests: real boots of the guest. ctest runs each case through support/kvm-launch, which finds KVM
// (this host's, or the nested VM's) or skips the case with its reason. Run by hand on a host without a
// usable /dev/kvm, the binary says so and exits 77 rather than failing every case; listing its cases
// needs no KVM.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/process.hpp"

int main(int argc, char* argv[])
{
    if (!test_support::kvm_cases_can_run(argc, argv))
        return 77;
    return Catch::Session().run(argc, argv);
}
