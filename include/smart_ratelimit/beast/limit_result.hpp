// smart_ratelimit/beast/limit_result.hpp
// limit_result: what the middleware decided for one request (limit_status), each
// matched rule's state, and how to dress the response: the RateLimit fields on a
// limited response, or the middleware's own 429 or 503.
#pragma once

#include <smart_ratelimit/beast/denied_response.hpp>
#include <smart_ratelimit/beast/headers.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/event.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

/// The outcome of checking one request.
enum class limit_status {
    unlimited,  ///< no route matched: the response is not touched
    allowed,
    blocked,          ///< 429
    degraded_open,    ///< the store could not decide; let through, no quota fields (fail_open)
    degraded_closed,  ///< the store could not decide; 503 with Retry-After (fail_closed)
};

namespace detail {

/// The rule states of one result: inline for up to verdict::max_rules (one route's
/// limiter), on the heap beyond (several routes). A result is built per request.
class rule_status_list {
public:
    rule_status_list() = default;
    rule_status_list(const rule_status_list& o) { *this = o; }
    rule_status_list& operator=(const rule_status_list& o) {
        if (this != &o) {
            clear();
            for (const auto& r : o.view()) push_back(r);
        }
        return *this;
    }

    void push_back(const rule_status& r) {
        if (heap_.empty() && size_ < inline_.size()) {
            inline_[size_++] = r;
            return;
        }
        if (heap_.empty())
            heap_.assign(inline_.begin(), inline_.begin() + static_cast<std::ptrdiff_t>(size_));
        heap_.push_back(r);
        ++size_;
    }
    void clear() noexcept {
        size_ = 0;
        heap_.clear();
    }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    const rule_status& operator[](std::size_t i) const noexcept { return view()[i]; }
    std::span<const rule_status> view() const noexcept {
        return heap_.empty() ? std::span<const rule_status>(inline_.data(), size_)
                             : std::span<const rule_status>(heap_);
    }

private:
    std::array<rule_status, verdict::max_rules> inline_{};
    std::size_t size_ = 0;
    std::vector<rule_status> heap_;
};

}  // namespace detail

/// One request's result: the status, each matched rule's state, and how to dress
/// the response. Views the limiters' rule names and the middleware's options, so it
/// must not outlive the middleware.
/// Thread safety: a plain value.
class limit_result {
public:
    limit_result() = default;

    limit_status status() const noexcept { return status_; }
    /// True when the handler should run (unlimited, allowed or degraded_open).
    bool allowed() const noexcept {
        return status_ == limit_status::unlimited || status_ == limit_status::allowed ||
               status_ == limit_status::degraded_open;
    }
    /// True when the store could not decide (whatever the failure policy did).
    bool degraded() const noexcept {
        return status_ == limit_status::degraded_open || status_ == limit_status::degraded_closed;
    }
    std::span<const rule_status> rules() const noexcept { return rules_.view(); }
    /// The longest wait among the refusing rules (0 when allowed); for degraded_closed,
    /// when asking again is worthwhile (at least a second).
    std::chrono::nanoseconds retry_after() const noexcept { return retry_after_; }
    /// The rule the legacy X-RateLimit-* fields report. Precondition: !rules().empty().
    const rule_status& binding() const noexcept { return rules_[binding_]; }

    /// Adds the rate-limit fields (as configured) to a response of a limited request.
    template <class Fields>
    void apply(http::header<false, Fields>& res) const {
        if (headers_ == nullptr || rules_.empty()) return;
        set_rate_limit_headers(res, rules_.view(), binding(), wall_now_, *headers_, policy_);
    }

    /// Calls `fn(name, value)` for each field apply() would set, for a server that
    /// writes its responses itself (for_each_rate_limit_field; the views are valid
    /// during the call only).
    template <class Fn>
    void for_each_field(Fn&& fn) const {
        if (headers_ == nullptr || rules_.empty()) return;
        for_each_rate_limit_field(rules_.view(), binding(), wall_now_, *headers_, policy_, fn);
    }

    /// Appends the fields apply() would set as header lines (`Name: value` and
    /// CRLF each) to `out`, e.g. a std::string (append_rate_limit_fields).
    template <class Out>
    void append_fields(Out& out) const {
        if (headers_ == nullptr || rules_.empty()) return;
        append_rate_limit_fields(out, rules_.view(), binding(), wall_now_, *headers_, policy_);
    }

    /// The middleware's own response for a request that must not proceed: the 429
    /// (text or problem+json, with all rate-limit fields) or, for degraded_closed, the
    /// 503 with Retry-After and no quota fields. Precondition: !allowed().
    http::response<http::string_body> make_response(const http::request_header<>& req) const {
        if (status_ == limit_status::degraded_closed)
            return make_unavailable_response(req.version(), keep_alive(req), retry_after_);
        bool json = false;
        if (problem_json_) {
            const auto accept = req[http::field::accept];
            json = prefers_json(std::string_view(accept.data(), accept.size()));
        }
        auto res = make_denied_response(req.version(), keep_alive(req), json, retry_after_);
        apply(res);
        return res;
    }

    /// Whether the connection persists after a response to `req` (RFC 9112 9.3).
    static bool keep_alive(const http::request_header<>& req) {
        http::token_list conn{req[http::field::connection]};
        return req.version() >= 11 ? !conn.exists("close") : conn.exists("keep-alive");
    }

private:
    template <class, class>
    friend class middleware;

    limit_status status_ = limit_status::unlimited;
    detail::rule_status_list rules_;
    std::size_t binding_ = 0;
    std::chrono::nanoseconds retry_after_{0};
    event_time wall_now_{};
    const header_options* headers_ = nullptr;
    std::string_view policy_;  // the route's preformatted RateLimit-Policy ("" = format it)
    bool problem_json_ = true;
};

}  // namespace smart_ratelimit::beast
