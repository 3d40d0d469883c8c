// smart_ratelimit/soci/detail/sql_text.hpp
// SQL text assembled at compile time: a fixed-size character array that string
// literals and other pieces concatenate onto with `+`, so a migration can name a
// repeated fragment (an hour expression, a trigger body) once and still be one
// constant string_view, byte for byte what the literals spell.
#pragma once

#include <cstddef>
#include <string_view>

namespace smart_ratelimit::soci::detail {

/// N characters of SQL (no terminating NUL is counted; one is stored).
template <std::size_t N>
struct sql_text {
    char chars[N + 1]{};

    constexpr sql_text() = default;
    constexpr sql_text(const char (&s)[N + 1]) {  // NOLINT: implicit from a literal on purpose
        for (std::size_t i = 0; i < N; ++i) chars[i] = s[i];
    }

    static constexpr std::size_t size() noexcept { return N; }
    constexpr std::string_view view() const noexcept { return {chars, N}; }
    constexpr operator std::string_view() const noexcept { return view(); }  // NOLINT
};

template <std::size_t N>
sql_text(const char (&)[N]) -> sql_text<N - 1>;

template <std::size_t A, std::size_t B>
constexpr sql_text<A + B> operator+(const sql_text<A>& a, const sql_text<B>& b) {
    sql_text<A + B> out;
    for (std::size_t i = 0; i < A; ++i) out.chars[i] = a.chars[i];
    for (std::size_t i = 0; i < B; ++i) out.chars[A + i] = b.chars[i];
    return out;
}
template <std::size_t A, std::size_t B>
constexpr sql_text<A + B - 1> operator+(const sql_text<A>& a, const char (&b)[B]) {
    return a + sql_text<B - 1>(b);
}
template <std::size_t A, std::size_t B>
constexpr sql_text<A + B - 1> operator+(const char (&a)[A], const sql_text<B>& b) {
    return sql_text<A - 1>(a) + b;
}

}  // namespace smart_ratelimit::soci::detail
