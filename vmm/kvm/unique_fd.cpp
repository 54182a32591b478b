// UniqueFd and Mapping: close and munmap live here so the header stays free of system headers.
#include "unique_fd.hpp"

#include <cerrno>
#include <sys/mman.h>
#include <unistd.h>

namespace vmm {

void UniqueFd::reset()
{
    if (m_fd >= 0)
        ::close(std::exchange(m_fd, -1));
}

SysResult<Mapping> Mapping::map(size_t size, int protection, int flags, int fd, long offset, char const* what)
{
    void* address = ::mmap(nullptr, size, protection, flags, fd, offset);
    if (address == MAP_FAILED)
        return sys_error(errno, what);
    return Mapping(address, size);
}

void Mapping::reset()
{
    if (m_address)
        ::munmap(std::exchange(m_address, nullptr), std::exchange(m_size, 0));
}

} // namespace vmm
