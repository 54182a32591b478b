// kvm_ioctl: the one way cpuplug calls ioctl. It keeps the return value (KVM returns fds and counts) and,
// on failure, errno with the request's name. Only vmm/kvm/ includes this header.
#pragma once

#include "sys_error.hpp"

#include <cerrno>
#include <sys/ioctl.h>

namespace vmm {

template<typename Arg>
SysResult<int> kvm_ioctl(int fd, unsigned long request, char const* name, Arg arg)
{
    int result = ::ioctl(fd, request, arg);
    if (result < 0)
        return sys_error(errno, name);
    return result;
}

// Spells the request once: KVM_IOCTL(fd, KVM_CREATE_VCPU, id) reports failures as "KVM_CREATE_VCPU: ...".
#define KVM_IOCTL(fd, request, arg) ::vmm::kvm_ioctl((fd), (request), #request, (arg))

} // namespace vmm
