// smart_ratelimit/algorithms/any_algorithm.hpp
// any_algorithm: the closed set of built-in algorithms in a std::variant, chosen at
// run time by name ("fixed_window", "sliding_window", "sliding_window_approx",
// "token_bucket", "leaky_bucket" or its alias "gcra"). An unknown name is a config_error.
#pragma once

#include <smart_ratelimit/algorithms/fixed_window.hpp>
#include <smart_ratelimit/algorithms/leaky_bucket.hpp>
#include <smart_ratelimit/algorithms/sliding_window.hpp>
#include <smart_ratelimit/algorithms/sliding_window_approx.hpp>
#include <smart_ratelimit/algorithms/token_bucket.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/rate.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace smart_ratelimit {

namespace detail {
/// A type that a variant `V` can be constructed from.
template <class A, class V>
concept one_of = std::is_constructible_v<V, A>;
}  // namespace detail

/// One of the built-in algorithms, selected at run time. Its state_type is the
/// variant of their states; a state of another alternative (the rule changed
/// algorithm) is treated as fresh.
/// Thread safety: immutable; the caller serializes access to a state.
class any_algorithm {
public:
    using variant_type = std::variant<fixed_window, sliding_window, sliding_window_approx,
                                      token_bucket, leaky_bucket>;
    using state_type = std::variant<fixed_window::state_type, sliding_window::state_type,
                                    sliding_window_approx::state_type, token_bucket::state_type,
                                    leaky_bucket::state_type>;

    /// The accepted names, in variant order (plus the alias "gcra" for leaky_bucket).
    static constexpr std::string_view names[] = {
        fixed_window::algorithm_name, sliding_window::algorithm_name,
        sliding_window_approx::algorithm_name, token_bucket::algorithm_name,
        leaky_bucket::algorithm_name};

    /// Selects the algorithm called `name`; throws config_error naming it when unknown.
    any_algorithm(std::string_view name, rate r) : alg_(make(name, r)) {}

    template <detail::one_of<variant_type> A>
    any_algorithm(A a) noexcept : alg_(std::move(a)) {}  // NOLINT: implicit on purpose

    std::uint64_t limit() const noexcept {
        return std::visit([](const auto& a) { return a.limit(); }, alg_);
    }
    std::chrono::nanoseconds period() const noexcept {
        return std::visit([](const auto& a) { return a.period(); }, alg_);
    }
    std::string_view name() const noexcept {
        return std::visit([](const auto& a) { return a.name(); }, alg_);
    }
    const variant_type& get() const noexcept { return alg_; }

private:
    template <class F>
    auto dispatch(state_type& s, F&& f) const {
        return std::visit(
            [&](const auto& a) {
                using A = std::decay_t<decltype(a)>;
                using S = typename A::state_type;
                S* st = std::get_if<S>(&s);
                if (st == nullptr) st = &s.template emplace<S>();
                return f(a, *st);
            },
            alg_);
    }

public:
    outcome try_acquire(state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const {
        return dispatch(s, [&](const auto& a, auto& st) { return a.try_acquire(st, now, cost); });
    }

    outcome peek(const state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const {
        return std::visit(
            [&](const auto& a) -> outcome {
                using A = std::decay_t<decltype(a)>;
                using S = typename A::state_type;
                if (const S* st = std::get_if<S>(&s)) return a.peek(*st, now, cost);
                return a.peek(S{}, now, cost);
            },
            alg_);
    }

    void release(state_type& s, std::chrono::nanoseconds now, std::uint64_t cost) const {
        dispatch(s, [&](const auto& a, auto& st) {
            a.release(st, now, cost);
            return 0;
        });
    }

    /// The algorithm named `name`, or throws config_error quoting it.
    static variant_type make(std::string_view name, rate r) {
        if (name == fixed_window::algorithm_name) return fixed_window(r);
        if (name == sliding_window::algorithm_name) return sliding_window(r);
        if (name == sliding_window_approx::algorithm_name) return sliding_window_approx(r);
        if (name == token_bucket::algorithm_name) return token_bucket(r);
        if (name == leaky_bucket::algorithm_name || name == "gcra") return leaky_bucket(r);
        std::string msg = "unknown algorithm \"";
        detail::append_printable(msg, name);
        msg +=
            "\" (expected fixed_window, sliding_window, sliding_window_approx, "
            "token_bucket, leaky_bucket or gcra)";
        throw config_error(msg);
    }

private:
    variant_type alg_;
};

}  // namespace smart_ratelimit
