// smart_ratelimit/beast/route.hpp
// route: which requests a limiter bound to the middleware applies to (a path
// prefix matched at segment boundaries, optional methods) and what one request
// costs. Paths are matched in canonical form (canonical_path), so that no spelling a
// router would serve as the same resource slips past a rule.
#pragma once

#include <smart_ratelimit/detail/text.hpp>

#include <boost/beast/http/verb.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

namespace detail {

// True when `path` is already canonical: it starts with '/', has no '%', no empty
// segment ("//") and no "." or ".." segment.
inline bool is_canonical_path(std::string_view path) noexcept {
    if (path.empty() || path.front() != '/') return false;
    std::size_t seg = 1;  // start of the current segment
    for (std::size_t i = 1; i <= path.size(); ++i) {
        if (i < path.size() && path[i] == '%') return false;
        if (i < path.size() && path[i] != '/') continue;
        const std::string_view s = path.substr(seg, i - seg);
        if (s == "." || s == ".." || (s.empty() && i < path.size())) return false;
        seg = i + 1;
    }
    return true;
}

}  // namespace detail

/// The canonical form of a request path (no query) that routes are matched against:
/// every `%XY` escape decoded once (`%2F` included: some routers decode it), then the
/// segments rebuilt without empty ones (`//`) and `.`, each `..` removing the segment
/// before it (never above the root), a trailing '/' kept. `/api//login`,
/// `/api/./login`, `/api/x/../login`, `/api%2Flogin` and `/%61pi/login` are all
/// `/api/login`. Case is kept; a malformed escape stays as sent. Returns `path`
/// itself when it is already canonical (the common case: no copy), else a view of
/// `buffer`, which it overwrites.
inline std::string_view canonical_path(std::string_view path, std::string& buffer) {
    if (detail::is_canonical_path(path)) return path;
    const std::string decoded = smart_ratelimit::detail::percent_decode(path, false);
    buffer.assign(1, '/');
    std::size_t seg = 0;
    for (std::size_t i = 0; i <= decoded.size(); ++i) {
        if (i < decoded.size() && decoded[i] != '/') continue;
        const std::string_view s = std::string_view(decoded).substr(seg, i - seg);
        seg = i + 1;
        if (s.empty() || s == ".") continue;
        if (s == "..") {
            if (buffer.size() > 1) buffer.erase(buffer.rfind('/', buffer.size() - 2) + 1);
            continue;
        }
        buffer.append(s);
        buffer += '/';
    }
    // Every kept segment was followed by '/': drop it unless the path ended in one
    // (or in a "." or ".." segment, which names a directory).
    const std::string_view last = std::string_view(decoded).substr(decoded.rfind('/') + 1);
    const bool directory = decoded.empty() || last.empty() || last == "." || last == "..";
    if (buffer.size() > 1 && !directory) buffer.pop_back();
    return buffer;
}

/// canonical_path into a new string.
inline std::string canonical_path(std::string_view path) {
    std::string buffer;
    return std::string(canonical_path(path, buffer));
}

/// Which requests a limiter applies to. A request matches when its method is in
/// `methods` (empty: every method) and its path (no query) equals `path_prefix` or
/// continues it at a segment boundary: "/api" matches "/api" and "/api/items", not
/// "/apix"; a prefix ending in '/' matches everything under it ("/" matches all).
/// The path is compared in canonical form (canonical_path), so `/api//login` or
/// `/api%2Flogin` cannot dodge a rule on `/api/login`; `path_prefix` must itself be
/// canonical (the middleware rejects one that is not).
struct route {
    std::string path_prefix = "/";
    std::vector<http::verb> methods{};
    /// Units one request consumes; at most every rule's limit.
    std::uint64_t cost = 1;

    /// `path`: the request's path as sent (no query); canonicalized first.
    bool matches(std::string_view path, http::verb method) const {
        std::string buffer;
        return matches_canonical(canonical_path(path, buffer), method);
    }

    /// As matches, for a path already in canonical form (one canonical_path call
    /// serves every route of a request).
    bool matches_canonical(std::string_view path, http::verb method) const noexcept {
        if (!methods.empty()) {
            bool found = false;
            for (const auto m : methods) found = found || m == method;
            if (!found) return false;
        }
        if (path.substr(0, path_prefix.size()) != path_prefix) return false;
        return path.size() == path_prefix.size() || path_prefix.back() == '/' ||
               path[path_prefix.size()] == '/';
    }
};

}  // namespace smart_ratelimit::beast
