// smart_ratelimit/beast/denied_response.hpp
// The responses the middleware itself sends: 429 Too Many Requests with the body
// "Rate limit exceeded. Please try again later." as text/plain, or as RFC 9457
// application/problem+json when the client's Accept prefers JSON; and the 503 of a
// degraded decision under fail_closed.
// `prefers_json` implements the Accept negotiation (RFC 9110 section 12.5.1).
#pragma once

#include <smart_ratelimit/beast/headers.hpp>
#include <smart_ratelimit/detail/text.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

/// The body of a 429, as the original library words it.
inline constexpr std::string_view denied_text = "Rate limit exceeded. Please try again later.";

namespace detail {

// q-value in thousandths (RFC 9110 "qvalue"); -1 when malformed.
inline int parse_qvalue(std::string_view v) noexcept {
    if (v.empty() || v.size() > 5) return -1;
    if (v[0] == '1') {
        if (v.size() == 1) return 1000;
        if (v[1] != '.') return -1;
        for (std::size_t i = 2; i < v.size(); ++i)
            if (v[i] != '0') return -1;
        return 1000;
    }
    if (v[0] != '0') return -1;
    if (v.size() == 1) return 0;
    if (v[1] != '.') return -1;
    int q = 0, scale = 100;
    for (std::size_t i = 2; i < v.size(); ++i) {
        if (v[i] < '0' || v[i] > '9') return -1;
        q += (v[i] - '0') * scale;
        scale /= 10;
    }
    return q;
}

// How well one media range matches a candidate type: specificity 3 (exact),
// 2 (type/*), 1 (*/*) or 0 (no match).
inline int range_match(std::string_view range, std::string_view type, std::string_view subtype,
                       std::string_view alias_subtype) noexcept {
    const auto slash = range.find('/');
    if (slash == std::string_view::npos) return 0;
    const auto rt = range.substr(0, slash), rs = range.substr(slash + 1);
    if (rt == "*" && rs == "*") return 1;
    if (!smart_ratelimit::detail::iequals(rt, type)) return 0;
    if (rs == "*") return 2;
    if (smart_ratelimit::detail::iequals(rs, subtype) ||
        (!alias_subtype.empty() && smart_ratelimit::detail::iequals(rs, alias_subtype)))
        return 3;
    return 0;
}

struct accept_score {
    int q = 0;            // thousandths
    int specificity = 0;  // of the range that gave q
    std::size_t position = 0;
};

// The quality the Accept value gives type/subtype: the most specific range wins.
inline accept_score score(std::string_view accept, std::string_view type, std::string_view subtype,
                          std::string_view alias_subtype = {}) noexcept {
    accept_score best;
    std::size_t pos = 0, index = 0;
    while (pos <= accept.size()) {
        const auto comma = accept.find(',', pos);
        std::string_view item =
            accept.substr(pos, comma == std::string_view::npos ? accept.npos : comma - pos);
        pos = comma == std::string_view::npos ? accept.size() + 1 : comma + 1;
        ++index;
        const auto semi = item.find(';');
        const std::string_view range = smart_ratelimit::detail::trim(item.substr(0, semi));
        if (range.empty()) continue;
        int q = 1000;
        if (semi != std::string_view::npos) {
            std::string_view params = item.substr(semi + 1);
            while (!params.empty()) {
                const auto next = params.find(';');
                const std::string_view p = smart_ratelimit::detail::trim(params.substr(0, next));
                if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
                    q = parse_qvalue(p.substr(2));
                params =
                    next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
            }
        }
        if (q < 0) continue;  // a malformed q: ignore the range
        const int m = range_match(range, type, subtype, alias_subtype);
        if (m > best.specificity) best = accept_score{q, m, index};
    }
    return best;
}

}  // namespace detail

/// True when the Accept value prefers JSON to text/plain: application/problem+json
/// (or application/json) gets a higher quality than text/plain; on equal quality the
/// more specific range wins (`application/json, */*` is JSON), then the earlier one
/// (`application/json, text/plain` is JSON). No Accept, or `*/*`: text.
inline bool prefers_json(std::string_view accept) noexcept {
    const auto json = detail::score(accept, "application", "problem+json", "json");
    if (json.specificity == 0 || json.q == 0) return false;
    const auto text = detail::score(accept, "text", "plain");
    if (json.q != text.q) return json.q > text.q;
    if (json.specificity != text.specificity) return json.specificity > text.specificity;
    return json.position < text.position;
}

/// The 429 response: Retry-After (seconds, >= 1), `Cache-Control: no-store`, and the
/// denied_text body as text/plain or application/problem+json. The rate-limit fields are
/// added by the caller (set_rate_limit_headers).
inline http::response<http::string_body> make_denied_response(
    unsigned version, bool keep_alive, bool json, std::chrono::nanoseconds retry_after) {
    http::response<http::string_body> res{http::status::too_many_requests, version};
    set_retry_after(res, retry_after);
    res.set(http::field::cache_control, "no-store");
    if (json) {
        const std::uint64_t s = ceil_seconds(retry_after);
        res.set(http::field::content_type, "application/problem+json");
        res.body() =
            "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\",\"status\":429,"
            "\"detail\":\"";
        res.body() += denied_text;
        res.body() += "\",\"retry_after\":";
        res.body() += std::to_string(s < 1 ? 1 : s);
        res.body() += '}';
    } else {
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = std::string(denied_text);
    }
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

/// The 503 of a degraded decision under fail_closed: the store could not decide.
/// Retry-After is `retry_after` in whole seconds, rounded up, at least 1; no quota
/// fields (nothing is known about the client's quota).
inline http::response<http::string_body> make_unavailable_response(
    unsigned version, bool keep_alive,
    std::chrono::nanoseconds retry_after = std::chrono::seconds(1)) {
    http::response<http::string_body> res{http::status::service_unavailable, version};
    set_retry_after(res, retry_after);
    res.set(http::field::cache_control, "no-store");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "Rate limiter unavailable. Please try again later.";
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

}  // namespace smart_ratelimit::beast
