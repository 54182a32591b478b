// Result<T, E>: a std::expected-shaped error carrier that works freestanding (no exceptions, RTTI or heap),
// so the guest, the hotplug core and the VMM all report errors the same way.
#pragma once

#include <cpuplug/base/assert.hpp>

#include <new>
#include <type_traits>
#include <utility>

namespace cpuplug {

template<typename E>
struct Unexpected {
    E error;
};

// Wraps an error so it converts into any Result<T, E>: `return unexpected(MemError::OutOfBounds);`
template<typename E>
constexpr Unexpected<std::decay_t<E>> unexpected(E&& error)
{
    return { std::forward<E>(error) };
}

template<typename T, typename E>
class [[nodiscard]] Result {
    static_assert(!std::is_reference_v<T> && !std::is_reference_v<E>, "Result holds values");

public:
    using ValueType = T;
    using ErrorType = E;

    constexpr Result(T const& value) requires std::is_copy_constructible_v<T>
        : m_has_value(true)
    {
        new (&m_value) T(value);
    }
    constexpr Result(T&& value)
        : m_has_value(true)
    {
        new (&m_value) T(std::move(value));
    }
    template<typename U>
        requires std::is_constructible_v<E, U&&>
    constexpr Result(Unexpected<U>&& error)
        : m_has_value(false)
    {
        new (&m_error) E(std::move(error.error));
    }
    template<typename U>
        requires std::is_constructible_v<E, U const&>
    constexpr Result(Unexpected<U> const& error)
        : m_has_value(false)
    {
        new (&m_error) E(error.error);
    }

    Result(Result const& other) requires std::is_copy_constructible_v<T> && std::is_copy_constructible_v<E>
        : m_has_value(other.m_has_value)
    {
        if (m_has_value)
            new (&m_value) T(other.m_value);
        else
            new (&m_error) E(other.m_error);
    }
    Result(Result&& other) noexcept
        : m_has_value(other.m_has_value)
    {
        if (m_has_value)
            new (&m_value) T(std::move(other.m_value));
        else
            new (&m_error) E(std::move(other.m_error));
    }
    Result& operator=(Result const&) = delete;
    Result& operator=(Result&& other) noexcept
    {
        if (this != &other) {
            destroy();
            m_has_value = other.m_has_value;
            if (m_has_value)
                new (&m_value) T(std::move(other.m_value));
            else
                new (&m_error) E(std::move(other.m_error));
        }
        return *this;
    }
    ~Result() { destroy(); }

    constexpr bool has_value() const { return m_has_value; }
    constexpr explicit operator bool() const { return m_has_value; }

    constexpr T& value() &
    {
        CPUPLUG_ASSERT(m_has_value);
        return m_value;
    }
    constexpr T const& value() const&
    {
        CPUPLUG_ASSERT(m_has_value);
        return m_value;
    }
    constexpr T&& value() &&
    {
        CPUPLUG_ASSERT(m_has_value);
        return std::move(m_value);
    }
    constexpr T release_value() { return std::move(value()); }

    constexpr E const& error() const&
    {
        CPUPLUG_ASSERT(!m_has_value);
        return m_error;
    }
    constexpr E&& error() &&
    {
        CPUPLUG_ASSERT(!m_has_value);
        return std::move(m_error);
    }

    constexpr T* operator->() { return &value(); }
    constexpr T const* operator->() const { return &value(); }
    constexpr T& operator*() & { return value(); }
    constexpr T const& operator*() const& { return value(); }

    template<typename U>
    constexpr T value_or(U&& fallback) const&
    {
        return m_has_value ? m_value : static_cast<T>(std::forward<U>(fallback));
    }

    // f: T -> Result<U, E>
    template<typename F>
    constexpr auto and_then(F&& f) &&
    {
        using R = std::invoke_result_t<F, T&&>;
        if (m_has_value)
            return std::forward<F>(f)(std::move(m_value));
        return R(unexpected(std::move(m_error)));
    }
    // f: T -> U
    template<typename F>
    constexpr auto transform(F&& f) &&
    {
        using U = std::invoke_result_t<F, T&&>;
        if (m_has_value) {
            if constexpr (std::is_void_v<U>) {
                std::forward<F>(f)(std::move(m_value));
                return Result<void, E>();
            } else {
                return Result<U, E>(std::forward<F>(f)(std::move(m_value)));
            }
        }
        if constexpr (std::is_void_v<U>)
            return Result<void, E>(unexpected(std::move(m_error)));
        else
            return Result<U, E>(unexpected(std::move(m_error)));
    }
    // f: E -> Result<T, E2>
    template<typename F>
    constexpr auto or_else(F&& f) &&
    {
        using R = std::invoke_result_t<F, E&&>;
        if (m_has_value)
            return R(std::move(m_value));
        return std::forward<F>(f)(std::move(m_error));
    }

private:
    void destroy()
    {
        if (m_has_value)
            m_value.~T();
        else
            m_error.~E();
    }

    union {
        T m_value;
        E m_error;
    };
    bool m_has_value;
};

template<typename E>
class [[nodiscard]] Result<void, E> {
public:
    using ValueType = void;
    using ErrorType = E;

    constexpr Result()
        : m_has_value(true)
    {
    }
    template<typename U>
        requires std::is_constructible_v<E, U&&>
    constexpr Result(Unexpected<U>&& error)
        : m_has_value(false)
    {
        new (&m_error) E(std::move(error.error));
    }
    template<typename U>
        requires std::is_constructible_v<E, U const&>
    constexpr Result(Unexpected<U> const& error)
        : m_has_value(false)
    {
        new (&m_error) E(error.error);
    }
    Result(Result&& other) noexcept
        : m_has_value(other.m_has_value)
    {
        if (!m_has_value)
            new (&m_error) E(std::move(other.m_error));
    }
    Result(Result const& other) requires std::is_copy_constructible_v<E>
        : m_has_value(other.m_has_value)
    {
        if (!m_has_value)
            new (&m_error) E(other.m_error);
    }
    Result& operator=(Result const&) = delete;
    Result& operator=(Result&& other) noexcept
    {
        if (this != &other) {
            destroy();
            m_has_value = other.m_has_value;
            if (!m_has_value)
                new (&m_error) E(std::move(other.m_error));
        }
        return *this;
    }
    ~Result() { destroy(); }

    constexpr bool has_value() const { return m_has_value; }
    constexpr explicit operator bool() const { return m_has_value; }
    constexpr void value() const { CPUPLUG_ASSERT(m_has_value); }
    constexpr void release_value() const { value(); }

    constexpr E const& error() const&
    {
        CPUPLUG_ASSERT(!m_has_value);
        return m_error;
    }
    constexpr E&& error() &&
    {
        CPUPLUG_ASSERT(!m_has_value);
        return std::move(m_error);
    }

    template<typename F>
    constexpr auto and_then(F&& f) &&
    {
        using R = std::invoke_result_t<F>;
        if (m_has_value)
            return std::forward<F>(f)();
        return R(unexpected(std::move(m_error)));
    }
    template<typename F>
    constexpr auto or_else(F&& f) &&
    {
        using R = std::invoke_result_t<F, E&&>;
        if (m_has_value)
            return R();
        return std::forward<F>(f)(std::move(m_error));
    }

private:
    void destroy()
    {
        if (!m_has_value)
            m_error.~E();
    }

    union {
        char m_unused;
        E m_error;
    };
    bool m_has_value;
};

} // namespace cpuplug

// Propagates the error of a Result to the caller, else yields its value. A GNU statement expression,
// as in Hedron and SerenityOS; the caller's return type must accept Unexpected<E>.
#define TRY(expression)                                                    \
    ({                                                                     \
        auto&& _cpuplug_try_result = (expression);                         \
        if (!_cpuplug_try_result.has_value())                              \
            return ::cpuplug::unexpected(                                  \
                static_cast<std::remove_cvref_t<decltype(_cpuplug_try_result)>&&>(_cpuplug_try_result).error()); \
        static_cast<std::remove_cvref_t<decltype(_cpuplug_try_result)>&&>(_cpuplug_try_result).release_value(); \
    })

// For results that cannot fail; an error here is a bug, so it panics with the expression.
#define MUST(expression)                                                                \
    ({                                                                                  \
        auto&& _cpuplug_must_result = (expression);                                     \
        if (!_cpuplug_must_result.has_value())                                          \
            ::cpuplug::panic("MUST failed: " #expression, __FILE__, __LINE__);          \
        static_cast<std::remove_cvref_t<decltype(_cpuplug_must_result)>&&>(_cpuplug_must_result).release_value(); \
    })
