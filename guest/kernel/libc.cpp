// The four functions GCC may emit calls to even in freestanding code. `rep movsb`/`rep stosb`: one CPL0
// instruction instead of a loop of several per byte.
#include <cstddef>

extern "C" {

void* memcpy(void* destination, void const* source, size_t count)
{
    void* d = destination;
    asm volatile("rep movsb" : "+D"(d), "+S"(source), "+c"(count)::"memory");
    return destination;
}

void* memset(void* destination, int value, size_t count)
{
    void* d = destination;
    asm volatile("rep stosb" : "+D"(d), "+c"(count) : "a"(value) : "memory");
    return destination;
}

void* memmove(void* destination, void const* source, size_t count)
{
    auto* d = static_cast<unsigned char*>(destination);
    auto const* s = static_cast<unsigned char const*>(source);
    if (d <= s || d >= s + count)
        return memcpy(destination, source, count);
    for (size_t i = count; i > 0; --i)
        d[i - 1] = s[i - 1];
    return destination;
}

int memcmp(void const* a, void const* b, size_t count)
{
    auto const* x = static_cast<unsigned char const*>(a);
    auto const* y = static_cast<unsigned char const*>(b);
    for (size_t i = 0; i < count; ++i)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

} // extern "C"

// A pure virtual call means a bug (a call through a half-built object); the core's Platform is abstract.
extern "C" [[noreturn]] void __cxa_pure_virtual()
{
    for (;;)
        asm volatile("cli; hlt");
}

// Virtual destructors make the compiler emit deleting destructors that name operator delete. Nothing in
// the guest allocates with new, so these are never reached; trap if they are.
void operator delete(void*) noexcept { __builtin_trap(); }
void operator delete(void*, size_t) noexcept { __builtin_trap(); }
