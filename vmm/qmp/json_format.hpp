// QEMU's JSON output style for QMP: one line, ", " and ": " separators, ASCII only (non-ASCII escaped).
// Clients parse JSON, but people read transcripts and some scripts grep them.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace vmm::qmp {

using Json = nlohmann::ordered_json;

std::string to_qmp_text(Json const& value);

} // namespace vmm::qmp
