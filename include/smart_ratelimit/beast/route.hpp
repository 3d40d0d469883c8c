// smart_ratelimit/beast/route.hpp
// route: which requests a limiter bound to the middleware applies to (a path
// prefix matched at segment boundaries, optional methods) and what one request
// costs. Paths are compared as sent: route the application the same way.
#pragma once

#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

/// Which requests a limiter applies to. A request matches when its method is in
/// `methods` (empty: every method) and its path (no query) equals `path_prefix` or
/// continues it at a segment boundary: "/api" matches "/api" and "/api/items", not
/// "/apix"; a prefix ending in '/' matches everything under it ("/" matches all).
/// The path is compared as sent, byte for byte; route the application the same way.
struct route {
    std::string path_prefix = "/";
    std::vector<http::verb> methods{};
    /// Units one request consumes; at most every rule's limit.
    std::uint64_t cost = 1;

    bool matches(std::string_view path, http::verb method) const noexcept {
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
