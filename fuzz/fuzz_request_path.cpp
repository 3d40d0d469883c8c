// fuzz/fuzz_request_path.cpp
// What the HTTP adapter reads from a request target: the path (path_of), its canonical
// form for route matching, and dashboard query parameters. The canonical path starts
// with '/' and has no empty, "." or ".." segment, so no spelling escapes a route.
#include "fuzz_check.hpp"

#include <smart_ratelimit/beast/detail/dashboard_http.hpp>
#include <smart_ratelimit/beast/keys.hpp>
#include <smart_ratelimit/beast/route.hpp>

#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace sb = smart_ratelimit::beast;
    const std::string_view target = srl_fuzz::text(data, size);
    const std::string_view path = sb::path_of(target);
    const std::string canonical = sb::canonical_path(path);
    srl_fuzz::require(!canonical.empty() && canonical.front() == '/', "starts with '/'");
    std::size_t seg = 1;
    for (std::size_t i = 1; i <= canonical.size(); ++i) {
        if (i < canonical.size() && canonical[i] != '/') continue;
        const std::string_view s = std::string_view(canonical).substr(seg, i - seg);
        srl_fuzz::require(s != "." && s != "..", "no dot segment");
        srl_fuzz::require(!s.empty() || i == canonical.size(), "no empty segment");
        seg = i + 1;
    }
    const sb::route api{"/api", {}};
    srl_fuzz::require(api.matches(path, boost::beast::http::verb::get) ==
                          api.matches_canonical(canonical, boost::beast::http::verb::get),
                      "matches agrees with its canonical form");
    const auto q = target.find('?');
    if (q != std::string_view::npos) {
        (void)sb::detail::form_param(target.substr(q + 1), "days");
        (void)sb::detail::form_param(target.substr(q + 1), "key");
    }
    return 0;
}
