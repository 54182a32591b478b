// Error numbers with Linux's values, the same in the guest and the host: the hotplug core returns 0 or a
// negative errno, like kernel/cpu.c, and the guest's control page and the VMM pass them on. Prefixed ERR_
// because hosted code also sees <cerrno>'s macros of the same names.
#pragma once

namespace cpuplug {

inline constexpr int ERR_PERM = 1;
inline constexpr int ERR_IO = 5;
inline constexpr int ERR_AGAIN = 11;
inline constexpr int ERR_NOMEM = 12;
inline constexpr int ERR_BUSY = 16;
inline constexpr int ERR_EXIST = 17;
inline constexpr int ERR_INVAL = 22;
inline constexpr int ERR_NOSPC = 28;
inline constexpr int ERR_TIMEDOUT = 110;
inline constexpr int ERR_CANCELED = 125;

// "EAGAIN", "EBUSY"... as Linux names them; "E?" for anything else. For logs and status reports, so it
// takes any number a guest may have written (negating INT_MIN would be undefined).
constexpr char const* errno_name(int error)
{
    if (error < -4095 || error > 4095)
        return "E?";
    switch (error < 0 ? -error : error) {
    case 0:
        return "OK";
    case ERR_PERM:
        return "EPERM";
    case ERR_IO:
        return "EIO";
    case ERR_AGAIN:
        return "EAGAIN";
    case ERR_NOMEM:
        return "ENOMEM";
    case ERR_BUSY:
        return "EBUSY";
    case ERR_EXIST:
        return "EEXIST";
    case ERR_INVAL:
        return "EINVAL";
    case ERR_NOSPC:
        return "ENOSPC";
    case ERR_TIMEDOUT:
        return "ETIMEDOUT";
    case ERR_CANCELED:
        return "ECANCELED";
    default:
        return "E?";
    }
}

} // namespace cpuplug
