// SysError: a failed system call, as errno plus the name of what was attempted ("KVM_CREATE_VCPU").
#pragma once

#include <cpuplug/base/result.hpp>

#include <fmt/format.h>

#include <cstring>
#include <string>

namespace vmm {

struct SysError {
    int code { 0 };
    char const* operation { "" };

    std::string message() const { return fmt::format("{}: {}", operation, std::strerror(code)); }
};

template<typename T>
using SysResult = cpuplug::Result<T, SysError>;

inline cpuplug::Unexpected<SysError> sys_error(int code, char const* operation)
{
    return cpuplug::unexpected(SysError { code, operation });
}

} // namespace vmm

template<>
struct fmt::formatter<vmm::SysError> : fmt::formatter<std::string> {
    auto format(vmm::SysError const& error, format_context& ctx) const
    {
        return fmt::formatter<std::string>::format(error.message(), ctx);
    }
};
