// smart_ratelimit/keys/key_function.hpp
// key_function: a key extractor made from any callable taking the request and
// returning something convertible to std::string_view (usually std::string), with an
// optional prefix such as "user:" or "tenant:".
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace smart_ratelimit {

namespace detail {
/// A request that a key function `Fn` accepts.
template <class Request, class Fn>
concept key_function_argument = std::is_invocable_v<const Fn&, const Request&>;
}  // namespace detail

/// Wraps a callable `fn(const Request&)`. With a prefix the key is prefix + fn(req),
/// and an empty fn(req) yields "" (so the limiter uses its fallback key).
/// Thread safety: the callable is called concurrently; it must allow that.
template <class Fn>
class key_function {
public:
    explicit key_function(Fn fn, std::string prefix = {})
        : fn_(std::move(fn)), prefix_(std::move(prefix)) {}

    template <detail::key_function_argument<Fn> Request>
    std::string operator()(const Request& req) const {
        auto&& inner = std::invoke(fn_, req);
        const std::string_view v(inner);
        if (v.empty()) return {};
        std::string out;
        out.reserve(prefix_.size() + v.size());
        out += prefix_;
        out += v;
        return out;
    }

    const std::string& prefix() const noexcept { return prefix_; }

private:
    [[no_unique_address]] Fn fn_;
    std::string prefix_;
};

template <class Fn>
key_function(Fn) -> key_function<Fn>;
template <class Fn>
key_function(Fn, std::string) -> key_function<Fn>;

}  // namespace smart_ratelimit
