// smart_ratelimit/soci/database_url.hpp
// Database URLs in the SQLAlchemy / dj-database-url convention:
// `sqlite:///relative.db`, `sqlite:////absolute.db`,
// `postgresql://user:password@host:port/dbname` (also `postgres://`), parsed into
// the SOCI backend name and connection string. Standard headers only.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/error.hpp>

namespace smart_ratelimit::soci {

/// The SQL dialects the adapter speaks.
enum class dialect { sqlite, postgresql };

/// What a PostgreSQL session asks the server for when it connects: sent as libpq's
/// `options` in the startup packet, so it costs no round trip and waits no longer
/// than connect_timeout. A URL's own `options` parameter comes after these and wins.
struct session_settings {
    /// The server cancels any statement of the session that runs longer; zero
    /// keeps the server's setting. (A frozen server cancels nothing: waits that
    /// must end are bounded on the client as well.)
    std::chrono::milliseconds statement_timeout{0};
};

/// A parsed database URL. For SQLite only `path` is set (`:memory:` is accepted);
/// for PostgreSQL the components are percent-decoded and `options` holds the
/// query parameters (`?sslmode=require&connect_timeout=5`) passed on to libpq.
struct database_url {
    dialect kind = dialect::sqlite;
    std::string path;
    std::string user;
    std::string password;
    std::string host;
    std::string port;
    std::string dbname;
    std::vector<std::pair<std::string, std::string>> options;
    std::string original;

    /// The SOCI backend name: "sqlite3" or "postgresql".
    std::string soci_backend() const { return kind == dialect::sqlite ? "sqlite3" : "postgresql"; }

    /// The SOCI connection string (libpq keyword/value form for PostgreSQL). Unless
    /// the URL sets them, a PostgreSQL connection gives up connecting after 5 s
    /// (`connect_timeout=5`), finds a peer that vanished (a network partition) with
    /// TCP keepalives within about 25 s idle (`keepalives_idle=10`,
    /// `keepalives_interval=5`, `keepalives_count=3`) and data left unacknowledged
    /// within 30 s (`tcp_user_timeout=30000`), and asks for
    /// `client_min_messages=warning` (no NOTICEs on stderr) and `settings`.
    std::string soci_connect_string(const session_settings& settings = {}) const;

    /// The URL with the password replaced by `***`, for messages and logs.
    std::string redacted() const;
};

namespace detail {

/// Percent-decodes one part of a database URL: every '%' must start an escape of two
/// hex digits, and `%00` is refused (throws config_error naming `url`); then decodes
/// as smart_ratelimit::detail::percent_decode does.
inline std::string decode_url_part(std::string_view s, std::string_view url) {
    using smart_ratelimit::detail::hex_value;
    for (std::size_t i = s.find('%'); i != std::string_view::npos; i = s.find('%', i + 3)) {
        if (i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
            throw config_error("database URL '" + std::string(url) + "': malformed percent escape");
        if (s[i + 1] == '0' && s[i + 2] == '0')
            throw config_error("database URL '" + std::string(url) + "': %00 is not allowed");
    }
    return smart_ratelimit::detail::percent_decode(s, false);
}

/// Quotes a libpq connection-string value: '...' with \ and ' escaped.
inline std::string pq_quote(std::string_view v) {
    std::string out = "'";
    for (const char c : v) {
        if (c == '\\' || c == '\'') out += '\\';
        out += c;
    }
    out += '\'';
    return out;
}

inline std::string redact_url(std::string_view url) {
    // scheme://user:password@host -> scheme://user:***@host
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return std::string(url);
    const auto auth_start = scheme_end + 3;
    const auto at = url.find('@', auth_start);
    const auto slash = url.find('/', auth_start);
    if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at))
        return std::string(url);
    const auto colon = url.find(':', auth_start);
    if (colon == std::string_view::npos || colon > at) return std::string(url);
    return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

}  // namespace detail

/// Parses a database URL. Throws config_error naming the URL (password redacted)
/// on an unknown scheme, a missing database name or path, a bad port or escape.
inline database_url parse_database_url(std::string_view url) {
    const std::string shown = detail::redact_url(url);
    auto fail = [&](const std::string& why) -> config_error {
        return config_error("database URL '" + shown + "': " + why +
                            " (expected sqlite:///relative.db, sqlite:////absolute.db or "
                            "postgresql://user:password@host:port/dbname)");
    };
    for (const char c : url)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            throw fail("contains whitespace or a control character");

    database_url out;
    out.original = std::string(url);
    const auto sep = url.find("://");
    if (sep == std::string_view::npos) throw fail("missing scheme");
    const std::string_view scheme = url.substr(0, sep);
    const std::string_view rest = url.substr(sep + 3);

    if (scheme == "sqlite" || scheme == "sqlite3") {
        out.kind = dialect::sqlite;
        if (rest.empty() || rest.front() != '/')
            throw fail("a SQLite URL has no host: use three slashes before the path");
        if (rest.find('?') != std::string_view::npos || rest.find('#') != std::string_view::npos)
            throw fail("query parameters are not supported for SQLite");
        // sqlite:///rel.db -> rest "/rel.db" -> "rel.db"; sqlite:////abs.db -> "/abs.db".
        out.path = detail::decode_url_part(rest.substr(1), shown);
        if (out.path.empty() || out.path.back() == '/')
            throw fail("missing the database file name");
        if (out.path.find('"') != std::string::npos) throw fail("a double quote in the path");
        return out;
    }
    if (scheme != "postgresql" && scheme != "postgres")
        throw fail("unknown scheme '" + std::string(scheme) + "'");

    out.kind = dialect::postgresql;
    std::string_view authority = rest;
    std::string_view path;
    std::string_view query;
    if (const auto q = authority.find('?'); q != std::string_view::npos) {
        query = authority.substr(q + 1);
        authority = authority.substr(0, q);
    }
    if (authority.find('#') != std::string_view::npos) throw fail("a fragment is not allowed");
    if (const auto slash = authority.find('/'); slash != std::string_view::npos) {
        path = authority.substr(slash + 1);
        authority = authority.substr(0, slash);
    }
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        const auto colon = userinfo.find(':');
        out.user = detail::decode_url_part(userinfo.substr(0, colon), shown);
        if (colon != std::string_view::npos)
            out.password = detail::decode_url_part(userinfo.substr(colon + 1), shown);
    }
    std::string_view host = authority;
    std::string_view port;
    if (!host.empty() && host.front() == '[') {  // [IPv6]:port
        const auto close = host.find(']');
        if (close == std::string_view::npos) throw fail("unterminated [IPv6] host");
        const std::string_view after = host.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') throw fail("junk after the [IPv6] host");
            port = after.substr(1);
        }
        host = host.substr(1, close - 1);
    } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
        port = host.substr(colon + 1);
        host = host.substr(0, colon);
    }
    out.host = detail::decode_url_part(host, shown);
    if (!port.empty() || authority.find(':') != std::string_view::npos) {
        if (port.empty() || port.size() > 5) throw fail("bad port '" + std::string(port) + "'");
        unsigned long v = 0;
        for (const char c : port) {
            if (c < '0' || c > '9') throw fail("bad port '" + std::string(port) + "'");
            v = v * 10 + static_cast<unsigned long>(c - '0');
        }
        if (v == 0 || v > 65535) throw fail("bad port '" + std::string(port) + "'");
        out.port = std::string(port);
    }
    out.dbname = detail::decode_url_part(path, shown);
    if (out.dbname.empty()) throw fail("missing the database name");
    if (out.dbname.find('/') != std::string::npos) throw fail("the database name contains '/'");
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos || eq == 0)
            throw fail("query parameter '" + std::string(pair) + "' is not key=value");
        std::string key = detail::decode_url_part(pair.substr(0, eq), shown);
        for (const char c : key)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                throw fail("bad query parameter name '" + key + "'");
        out.options.emplace_back(std::move(key),
                                 detail::decode_url_part(pair.substr(eq + 1), shown));
    }
    return out;
}

inline std::string database_url::soci_connect_string(const session_settings& settings) const {
    if (kind == dialect::sqlite) return "db=\"" + path + "\" timeout=30";
    std::string s = "dbname=" + detail::pq_quote(dbname);
    if (!host.empty()) s += " host=" + detail::pq_quote(host);
    if (!port.empty()) s += " port=" + port;
    if (!user.empty()) s += " user=" + detail::pq_quote(user);
    if (!password.empty()) s += " password=" + detail::pq_quote(password);
    // Server settings first, the URL's own `options` after them: the last one wins.
    std::string server_options = "-c client_min_messages=warning";
    if (settings.statement_timeout.count() > 0)
        server_options +=
            " -c statement_timeout=" + std::to_string(settings.statement_timeout.count());
    auto given = [&](std::string_view key) {
        for (const auto& [k, v] : options)
            if (k == key) return true;
        return false;
    };
    for (const auto& [k, v] : options) {
        if (k == "options") continue;
        s += " " + k + "=" + detail::pq_quote(v);
    }
    for (const auto& [k, v] : options)
        if (k == "options") server_options += " " + v;
    s += " options=" + detail::pq_quote(server_options);
    // Every wait on the server ends: a dead server fails a connection attempt
    // quickly, and a vanished one is noticed while a statement waits for its answer.
    static constexpr std::pair<std::string_view, std::string_view> bounded[] = {
        {"connect_timeout", "5"},     {"keepalives", "1"},       {"keepalives_idle", "10"},
        {"keepalives_interval", "5"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "30000"}};
    for (const auto& [k, v] : bounded)
        if (!given(k)) {
            s += ' ';
            s += k;
            s += '=';
            s += v;
        }
    return s;
}

inline std::string database_url::redacted() const { return detail::redact_url(original); }

}  // namespace smart_ratelimit::soci
