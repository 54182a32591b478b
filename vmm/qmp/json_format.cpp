// to_qmp_text: a recursive writer; strings and numbers come from nlohmann's own escaping.
#include "json_format.hpp"

namespace vmm::qmp {

namespace {

void write(Json const& value, std::string& out)
{
    switch (value.type()) {
    case Json::value_t::object: {
        out += '{';
        bool first = true;
        for (auto const& [key, member] : value.items()) {
            if (!first)
                out += ", ";
            first = false;
            out += Json(key).dump(-1, ' ', true);
            out += ": ";
            write(member, out);
        }
        out += '}';
        break;
    }
    case Json::value_t::array: {
        out += '[';
        bool first = true;
        for (auto const& element : value) {
            if (!first)
                out += ", ";
            first = false;
            write(element, out);
        }
        out += ']';
        break;
    }
    default:
        out += value.dump(-1, ' ', true, Json::error_handler_t::replace);
        break;
    }
}

} // namespace

std::string to_qmp_text(Json const& value)
{
    std::string out;
    write(value, out);
    return out;
}

} // namespace vmm::qmp
