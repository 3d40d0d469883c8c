// smart_ratelimit/beast/keys.hpp
// Key extractors for Boost.Beast requests. `request_view` bundles a request with
// its socket peer, the client address resolved through trusted proxies and the
// user id the application recognised; the extractors turn it into `ip:<addr>`,
// `user:<id>`, `header:<Name>:<value>`, or the first non-empty of several.
#pragma once

#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/keys/cidr.hpp>
#include <smart_ratelimit/keys/ip.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace smart_ratelimit::beast {

namespace http = boost::beast::http;

/// The address of an Asio endpoint's address as an ip_address (IPv4-mapped
/// IPv6 peers become IPv4; a scope id is dropped).
inline ip_address to_ip_address(const boost::asio::ip::address& a) noexcept {
    if (a.is_v4()) return ip_address::v4(a.to_v4().to_bytes());
    return ip_address::v6(a.to_v6().to_bytes());
}

/// The request path: the target without its query string or fragment. An
/// absolute-form target (`http://host/a?b`, RFC 9112 section 3.2.2) gives its path
/// (`/a`, or `/` when it has none), so it is limited like the origin form.
inline std::string_view path_of(std::string_view target) noexcept {
    auto has_scheme = [&](std::string_view scheme) {
        if (target.size() < scheme.size()) return false;
        for (std::size_t i = 0; i < scheme.size(); ++i) {
            char c = target[i];
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            if (c != scheme[i]) return false;
        }
        return true;
    };
    if (!target.empty() && target.front() != '/') {
        std::size_t skip = 0;
        if (has_scheme("http://"))
            skip = 7;
        else if (has_scheme("https://"))
            skip = 8;
        if (skip != 0) {
            const auto slash = target.find_first_of("/?#", skip);
            if (slash == std::string_view::npos || target[slash] != '/') return "/";
            target.remove_prefix(slash);
        }
    }
    // Two memchr scans (find_first_of("?#") calls memchr once per character).
    target = target.substr(0, target.find('?'));
    return target.substr(0, target.find('#'));
}

/// A request as the limiter sees it: the Beast request header (any body), the
/// socket peer, the client address (the peer, or the X-Forwarded-For hop chosen by
/// resolve_client_ip when the peer is a trusted proxy) and an optional user id.
/// It holds references: the request (and the user id text) must outlive the view.
/// Thread safety: a read-only view; safe to share while the request is not modified.
class request_view {
public:
    using header_type = http::request_header<>;

    /// A view whose client is the peer itself (no proxies trusted).
    request_view(const header_type& req, const ip_address& peer,
                 std::optional<std::string_view> user_id = {}) noexcept
        : req_(&req),
          path_(path_of(target_of(req))),
          peer_(peer),
          client_(peer),
          user_id_(user_id) {}

    /// A view whose client is resolved through `trusted` proxies.
    request_view(const header_type& req, const ip_address& peer, const cidr_list& trusted,
                 std::optional<std::string_view> user_id = {})
        : req_(&req),
          path_(path_of(target_of(req))),
          peer_(peer),
          client_(resolve(req, peer, trusted)),
          user_id_(user_id) {}

    const header_type& request() const noexcept { return *req_; }
    /// The socket peer (REMOTE_ADDR): what events record as ip_address.
    const ip_address& peer() const noexcept { return peer_; }
    /// The client address the ip key is made of.
    const ip_address& client() const noexcept { return client_; }
    /// The authenticated user's id, when the application recognised one.
    std::optional<std::string_view> user_id() const noexcept { return user_id_; }
    void set_user_id(std::optional<std::string_view> id) noexcept { user_id_ = id; }

    /// The path (no query), found once when the view is made.
    std::string_view path() const noexcept { return path_; }
    std::string_view target() const noexcept { return target_of(*req_); }
    std::string_view method() const noexcept {
        const auto m = req_->method_string();
        return {m.data(), m.size()};
    }

    /// The client address resolved from a request's X-Forwarded-For lines.
    static ip_address resolve(const header_type& req, const ip_address& peer,
                              const cidr_list& trusted) {
        if (trusted.empty() || !trusted.contains(peer)) return peer;
        std::vector<std::string_view> lines;
        for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it)
            lines.emplace_back(it->value().data(), it->value().size());
        return resolve_client_ip(peer, trusted, lines);
    }

private:
    static std::string_view target_of(const header_type& req) noexcept {
        const auto t = req.target();
        return {t.data(), t.size()};
    }

    const header_type* req_;
    std::string_view path_;
    ip_address peer_;
    ip_address client_;
    std::optional<std::string_view> user_id_;
};

/// `ip:<client address>`, IPv6 grouped by `grouping` (a /64 by default).
/// Thread safety: immutable after construction.
class ip_key {
public:
    explicit ip_key(ip_grouping grouping = {}) : grouping_(grouping) { grouping_.validate(); }
    std::string operator()(const request_view& r) const {
        return smart_ratelimit::ip_key(r.client(), grouping_);
    }
    const ip_grouping& grouping() const noexcept { return grouping_; }

private:
    ip_grouping grouping_;
};

/// Reads the user id from the view (what the middleware's identify callable returned).
struct view_user_id {
    std::optional<std::string_view> operator()(const request_view& r) const noexcept {
        return r.user_id();
    }
};

/// `user:<id>`; "" for an anonymous request. `Fn(const request_view&)` returns the id
/// as anything convertible to std::string_view, or an optional of it (nullopt or ""
/// means anonymous). The default reads request_view::user_id().
/// Thread safety: `Fn` is called concurrently; it must allow that.
template <class Fn = view_user_id>
class user_key {
public:
    user_key() = default;
    explicit user_key(Fn fn) : fn_(std::move(fn)) {}

    std::string operator()(const request_view& r) const {
        auto&& id = std::invoke(fn_, r);
        using id_type = std::remove_cvref_t<decltype(id)>;
        std::string_view v;
        if constexpr (requires {
                          id.has_value();
                          *id;
                      }) {
            if (!id) return {};
            v = std::string_view(*id);
        } else {
            static_assert(std::is_convertible_v<const id_type&, std::string_view>,
                          "user_key: the callable must return a string or an optional string");
            v = std::string_view(id);
        }
        if (v.empty()) return {};
        std::string out;
        out.reserve(5 + v.size());
        out += "user:";
        out += v;
        return out;
    }

private:
    [[no_unique_address]] Fn fn_{};
};

template <class Fn>
user_key(Fn) -> user_key<Fn>;

/// `header:<Name>:<value>` from the first field line called `Name` (as configured,
/// matched case-insensitively); "" when the field is absent or empty.
/// Thread safety: immutable after construction.
class header_key {
public:
    explicit header_key(std::string name) : name_(std::move(name)) {
        bool ok = !name_.empty();
        for (const char c : name_)
            ok = ok && c > 32 && c < 127 && c != ':' && c != '(' && c != ')' && c != ',' &&
                 c != '/' && c != ';' && c != '<' && c != '=' && c != '>' && c != '?' && c != '@' &&
                 c != '[' && c != '\\' && c != ']' && c != '{' && c != '}' && c != '"';
        if (!ok) throw config_error("invalid header name for a key: \"" + name_ + "\"");
    }

    std::string operator()(const request_view& r) const { return make(r, name_); }

    /// The key for field `name` of `r` (no validation of the name).
    static std::string make(const request_view& r, std::string_view name) {
        const auto it = r.request().find(boost::beast::string_view(name.data(), name.size()));
        if (it == r.request().end()) return {};
        std::string_view v(it->value().data(), it->value().size());
        v = smart_ratelimit::detail::trim(v);
        if (v.empty()) return {};
        std::string out;
        out.reserve(8 + name.size() + v.size());
        out += "header:";
        out += name;
        out += ':';
        out += v;
        return out;
    }

    const std::string& name() const noexcept { return name_; }

private:
    std::string name_;
};

/// The first non-empty key among its parts, e.g. `first_key(user_key{}, ip_key{})`
/// ("user or IP"); "" when every part is empty (the limiter then falls back).
/// Thread safety: as safe as its parts.
template <class... Parts>
class first_key {
    static_assert(sizeof...(Parts) >= 1, "first_key needs at least one part");

public:
    explicit first_key(Parts... parts) : parts_(std::move(parts)...) {}

    template <class Request>
    std::string operator()(const Request& r) const {
        std::string out;
        std::apply(
            [&](const auto&... p) {
                auto try_part = [&](const auto& part) {
                    auto&& k = part(r);
                    const std::string_view v(k);
                    if (v.empty()) return false;
                    out.assign(v);
                    return true;
                };
                (try_part(p) || ...);
            },
            parts_);
        return out;
    }

private:
    std::tuple<Parts...> parts_;
};

template <class... Parts>
first_key(Parts...) -> first_key<Parts...>;

/// A key chosen at run time from configuration: the first non-empty of a list of
/// built-in parts (ip, user, header). `request_key::ip()` is the common default;
/// `request_key::user_or_ip()` keys authenticated users by id and others by address.
/// Thread safety: immutable after construction.
class request_key {
public:
    enum class kind { ip, user, header };
    struct part {
        kind what = kind::ip;
        std::string header_name;  // kind::header only
    };

    static request_key ip(ip_grouping grouping = {}) {
        return request_key({{kind::ip, {}}}, grouping);
    }
    static request_key user() { return request_key({{kind::user, {}}}); }
    static request_key header(std::string name) {
        header_key check(name);  // validates the name
        return request_key({{kind::header, std::move(name)}});
    }
    static request_key user_or_ip(ip_grouping grouping = {}) {
        return request_key({{kind::user, {}}, {kind::ip, {}}}, grouping);
    }

    /// Parts tried in order; at least one. Throws config_error for a bad header name,
    /// a bad grouping or an empty list.
    explicit request_key(std::vector<part> parts, ip_grouping grouping = {})
        : parts_(std::move(parts)), ip_(grouping) {
        if (parts_.empty()) throw config_error("request_key needs at least one part");
        for (const auto& p : parts_)
            if (p.what == kind::header) header_key check(p.header_name);
    }

    std::string operator()(const request_view& r) const {
        for (const auto& p : parts_) {
            std::string k;
            switch (p.what) {
                case kind::ip:
                    k = ip_(r);
                    break;
                case kind::user:
                    k = user_key<>{}(r);
                    break;
                case kind::header:
                    k = header_key::make(r, p.header_name);
                    break;
            }
            if (!k.empty()) return k;
        }
        return {};
    }

    const std::vector<part>& parts() const noexcept { return parts_; }

private:
    std::vector<part> parts_;
    ip_key ip_;
};

}  // namespace smart_ratelimit::beast
