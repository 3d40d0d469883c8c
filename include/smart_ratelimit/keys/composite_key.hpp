// smart_ratelimit/keys/composite_key.hpp
// composite_key: joins the keys of several extractors with ':' (for example a
// tenant and a user: "tenant:acme:user:42"). If any part is empty the whole key is
// empty, so the limiter falls back instead of merging clients.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace smart_ratelimit {

/// Key extractor over extractors Parts...; each part must accept the request.
/// Thread safety: as safe as its parts.
template <class... Parts>
class composite_key {
    static_assert(sizeof...(Parts) >= 1, "composite_key needs at least one part");

public:
    explicit composite_key(Parts... parts) : parts_(std::move(parts)...) {}

    template <class Request>
    std::string operator()(const Request& req) const {
        std::string out;
        bool empty_part = false;
        std::apply(
            [&](const auto&... p) {
                std::size_t i = 0;
                auto add = [&](const auto& part) {
                    auto&& k = part(req);
                    const std::string_view v(k);
                    if (v.empty()) empty_part = true;
                    if (i++ != 0) out += ':';
                    out += v;
                };
                (add(p), ...);
            },
            parts_);
        if (empty_part) out.clear();
        return out;
    }

private:
    std::tuple<Parts...> parts_;
};

}  // namespace smart_ratelimit
