// UniqueFd and Mapping: move-only owners of a file descriptor and of an mmap'ed range.
#pragma once

#include "sys_error.hpp"

#include <cstddef>
#include <utility>

namespace vmm {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd)
        : m_fd(fd)
    {
    }
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& other) noexcept
        : m_fd(std::exchange(other.m_fd, -1))
    {
    }
    UniqueFd& operator=(UniqueFd&& other) noexcept
    {
        if (this != &other) {
            reset();
            m_fd = std::exchange(other.m_fd, -1);
        }
        return *this;
    }
    UniqueFd(UniqueFd const&) = delete;
    UniqueFd& operator=(UniqueFd const&) = delete;

    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }
    int release() { return std::exchange(m_fd, -1); }
    void reset();

private:
    int m_fd { -1 };
};

class Mapping {
public:
    Mapping() = default;
    // SAFETY: maps `size` bytes; the destructor unmaps exactly that range, so the mapping cannot leak or
    // be unmapped twice.
    static SysResult<Mapping> map(size_t size, int protection, int flags, int fd, long offset, char const* what);
    ~Mapping() { reset(); }
    Mapping(Mapping&& other) noexcept
        : m_address(std::exchange(other.m_address, nullptr))
        , m_size(std::exchange(other.m_size, 0))
    {
    }
    Mapping& operator=(Mapping&& other) noexcept
    {
        if (this != &other) {
            reset();
            m_address = std::exchange(other.m_address, nullptr);
            m_size = std::exchange(other.m_size, 0);
        }
        return *this;
    }
    Mapping(Mapping const&) = delete;
    Mapping& operator=(Mapping const&) = delete;

    void* address() const { return m_address; }
    size_t size() const { return m_size; }
    template<typename T>
    T* as() const
    {
        return static_cast<T*>(m_address);
    }
    void reset();

private:
    Mapping(void* address, size_t size)
        : m_address(address)
        , m_size(size)
    {
    }
    void* m_address { nullptr };
    size_t m_size { 0 };
};

} // namespace vmm
