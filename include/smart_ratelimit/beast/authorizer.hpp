// smart_ratelimit/beast/authorizer.hpp
// Who may see the dashboard. An authorizer is a policy that looks at a request's
// header and says "staff" or not; the default denies everyone. The built-in
// staff_token_authorizer accepts tokens from `Authorization: Bearer` (never a cookie
// or the query string), compared in constant time, and enables the sign-in form,
// whose sessions the dashboard keeps (beast/staff_sessions.hpp).
#pragma once

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <smart_ratelimit/beast/detail/constant_time.hpp>
#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/error.hpp>

#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit::beast {

/// dashboard_authorizer: decides whether a request comes from staff.
///
/// | expression         | meaning                                                     |
/// |--------------------|-------------------------------------------------------------|
/// | `a.is_staff(h)`    | `h` is a `const http::request_header<>&`; true lets the request see dashboard data |
///
/// Optional sign-in support (enables the dashboard's sign-in form, whose session
/// cookie the dashboard itself checks besides `is_staff`):
///
/// | expression              | meaning                                                  |
/// |-------------------------|----------------------------------------------------------|
/// | `a.accepts_token(t)`    | `t` a `std::string_view` typed into the form; true when it is a staff token |
///
/// Thread safety: `is_staff` and `accepts_token` are called concurrently from
/// several threads and must be safe to do so.
template <class A>
concept dashboard_authorizer = requires(const A& a, const boost::beast::http::request_header<>& h) {
    { a.is_staff(h) } -> std::convertible_to<bool>;
};

/// True when `A` also supports the token sign-in form.
template <class A>
concept token_sign_in_authorizer = dashboard_authorizer<A> &&
    requires(const A& a, std::string_view t) {
    { a.accepts_token(t) } -> std::convertible_to<bool>;
};

/// The default authorizer: nobody is staff. A dashboard mounted without choosing
/// an authorizer answers 403 to everyone.
struct deny_all {
    bool is_staff(const boost::beast::http::request_header<>&) const noexcept { return false; }
};

/// Wraps an application callable `bool(const http::request_header<>&)`, e.g. one
/// that checks the application's own session cookie.
/// Thread safety: as the wrapped callable.
template <class F>
class callback_authorizer {
public:
    explicit callback_authorizer(F f) : f_(std::move(f)) {}
    bool is_staff(const boost::beast::http::request_header<>& h) const {
        return static_cast<bool>(f_(h));
    }

private:
    F f_;
};

namespace detail {

/// Calls `f(value)` for every cookie named `name` in every `Cookie` field line.
template <class F>
void for_each_cookie(const boost::beast::http::fields& fields, std::string_view name, F&& f) {
    for (auto it = fields.find(boost::beast::http::field::cookie);
         it != fields.end() && it->name() == boost::beast::http::field::cookie; ++it) {
        std::string_view line = it->value();
        while (!line.empty()) {
            const auto semi = line.find(';');
            std::string_view pair = smart_ratelimit::detail::trim(line.substr(0, semi));
            line = semi == std::string_view::npos ? std::string_view{} : line.substr(semi + 1);
            const auto eq = pair.find('=');
            if (eq == std::string_view::npos) continue;
            if (smart_ratelimit::detail::trim(pair.substr(0, eq)) != name) continue;
            std::string_view value = smart_ratelimit::detail::trim(pair.substr(eq + 1));
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
                value = value.substr(1, value.size() - 2);
            f(value);
        }
    }
}

/// True when every byte of `t` may appear in a cookie value and a bearer token
/// (visible ASCII, no quote, comma, semicolon or backslash).
inline bool is_cookie_safe_token(std::string_view t) noexcept {
    for (const char c : t) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\') return false;
    }
    return true;
}

}  // namespace detail

/// Staff are requests carrying one of the configured tokens as
/// `Authorization: Bearer <token>` (a Prometheus scrape, a script), or a session of
/// the dashboard's sign-in form, where the token is typed once and the cookie then
/// holds a random session id (the dashboard checks it). A cookie holding the token
/// itself is not staff, and query strings are never consulted (they end up in logs
/// and Referer headers). Tokens must be 8 to 512 visible ASCII characters without
/// `" , ; \`.
/// Thread safety: immutable after construction; safe to share between threads.
class staff_token_authorizer {
public:
    explicit staff_token_authorizer(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {
        if (tokens_.empty())
            throw config_error("staff_token_authorizer: at least one staff token is required");
        for (const auto& t : tokens_) {
            if (t.size() < 8 || t.size() > 512)
                throw config_error(
                    "staff_token_authorizer: a staff token must be 8 to 512 characters long");
            if (!detail::is_cookie_safe_token(t))
                throw config_error(
                    "staff_token_authorizer: a staff token may only hold visible ASCII characters "
                    "other than '\"', ',', ';' and '\\'");
        }
    }

    explicit staff_token_authorizer(std::string token)
        : staff_token_authorizer(std::vector<std::string>{std::move(token)}) {}

    /// True when `token` equals one of the staff tokens. Every token is compared,
    /// each in constant time, whatever the outcome.
    bool accepts_token(std::string_view token) const noexcept {
        bool ok = false;
        for (const auto& t : tokens_) ok |= detail::constant_time_equals(token, t);
        return ok && !token.empty();
    }

    bool is_staff(const boost::beast::http::request_header<>& h) const {
        bool ok = false;
        for (auto it = h.find(boost::beast::http::field::authorization);
             it != h.end() && it->name() == boost::beast::http::field::authorization; ++it) {
            const std::string_view v = smart_ratelimit::detail::trim(it->value());
            const auto sp = v.find(' ');
            if (sp == std::string_view::npos) continue;
            if (!smart_ratelimit::detail::iequals(v.substr(0, sp), "bearer")) continue;
            ok |= accepts_token(smart_ratelimit::detail::trim(v.substr(sp + 1)));
        }
        return ok;
    }

private:
    std::vector<std::string> tokens_;
};

static_assert(dashboard_authorizer<deny_all>);
static_assert(token_sign_in_authorizer<staff_token_authorizer>);
static_assert(!token_sign_in_authorizer<deny_all>);

}  // namespace smart_ratelimit::beast
