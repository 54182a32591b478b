// The guest's side of the control page (guest/abi/control.hpp): reads the VMM's request, runs it on the
// hotplug core, writes the response. The page is the VMM's to write at any time, so every field is read
// once into a local and checked before use. Pure logic over a Cpuhp, so the host tests run it too.
#pragma once

#include <guest/abi/control.hpp>

#include <cpuplug/cpuhp.hpp>

#include <cstdint>

namespace guest::control_page {

struct Context {
    cpuplug::Cpuhp& hotplug;
    uint32_t possible;                  // CPUs 0..possible-1 are reported and may be named
    uint32_t (*apic_id_of)(uint32_t cpu);
    uint32_t disabled { 0 };            // HotplugDisable requests not yet undone by HotplugEnable
};

// Fills in magic and version on a zeroed page of control::SIZE bytes.
void init(void* page);

// 0 when the request may run, -ERR_INVAL for an unknown command, a CPU at or past `possible`, or a state
// that is neither a table index nor (for SetFail) CPUHP_INVALID.
int validate(uint32_t command, uint32_t cpu, uint32_t state, uint32_t possible);

// If request_seq differs from response_seq: runs the request, writes `result` (and the query's data),
// then response_seq = request_seq after a release fence. Returns true with *answered = that sequence
// number, for the status-port event the VMM waits for.
bool serve(void* page, Context& context, uint32_t* answered);

} // namespace guest::control_page
