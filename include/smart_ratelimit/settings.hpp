// smart_ratelimit/settings.hpp
// The one settings object every command and adapter reads: loaded from
// a JSON file (`--settings FILE` or RATELIMIT_SETTINGS) and from environment
// variables with the original library's names, the environment winning over the file and
// a command-line flag (apply_setting) winning over both. Unknown keys and bad
// values throw config_error naming the key and where it came from.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <smart_ratelimit/detail/json_reader.hpp>
#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/keys/cidr.hpp>
#include <smart_ratelimit/rate.hpp>
#include <smart_ratelimit/limiter_options.hpp>

namespace smart_ratelimit {

/// The database used when none is configured: a SQLite file in the working directory.
inline constexpr std::string_view default_database_url = "sqlite:///smart_ratelimit.db";

/// The SMTP server used when none is configured (Django's EMAIL_HOST/EMAIL_PORT default).
inline constexpr std::string_view default_smtp_url = "smtp://localhost:25";

/// Every setting. The JSON file and the environment use the names in the comments.
/// Thread safety: a plain value.
struct settings {
    bool log_events = false;                // RATELIMIT_LOG_EVENTS
    std::int64_t alert_threshold = 0;       // RATELIMIT_ALERT_THRESHOLD; 0 = alerting disabled
    std::vector<std::string> alert_emails;  // RATELIMIT_ALERT_EMAILS
    std::string alert_webhook;              // RATELIMIT_ALERT_WEBHOOK; "" = no webhook
    std::string default_from_email = "webmaster@localhost";  // DEFAULT_FROM_EMAIL
    bool fail_open = false;                                  // RATELIMIT_FAIL_OPEN
    std::string default_limit;                               // RATELIMIT_DEFAULT_LIMIT; "" = none
    std::string database_url{default_database_url};          // RATELIMIT_DATABASE_URL
    std::string smtp_url{default_smtp_url};                  // RATELIMIT_SMTP_URL
    std::vector<std::string> trusted_proxies;                // RATELIMIT_TRUSTED_PROXIES (CIDRs)
    std::string alert_webhook_secret;               // RATELIMIT_ALERT_WEBHOOK_SECRET; "" = unsigned
    std::int64_t alert_cooldown_minutes = 0;        // RATELIMIT_ALERT_COOLDOWN_MINUTES; 0 = none
    std::chrono::milliseconds alert_timeout{5000};  // RATELIMIT_ALERT_TIMEOUT_MS, per channel
    std::string alert_ca_file;  // RATELIMIT_ALERT_CA_FILE; "" = system trust store

    bool alerts_enabled() const noexcept { return alert_threshold > 0; }
    friend bool operator==(const settings&, const settings&) = default;
};

/// What RATELIMIT_FAIL_OPEN asks of every limiter: limiter_options::on_store_failure.
inline failure_policy store_failure_policy(const settings& s) noexcept {
    return s.fail_open ? failure_policy::fail_open : failure_policy::fail_closed;
}

/// `base` with what the settings decide for a limiter: on_store_failure
/// (RATELIMIT_FAIL_OPEN). The other fields are the application's.
inline limiter_options limiter_options_from(const settings& s, limiter_options base = {}) {
    base.on_store_failure = store_failure_policy(s);
    return base;
}

/// An environment snapshot: name -> value. Tests pass their own map.
using environment_map = std::map<std::string, std::string, std::less<>>;

/// Every key a settings file or the environment may set, in documentation order.
inline constexpr std::array<std::string_view, 14> setting_names{
    "RATELIMIT_LOG_EVENTS",
    "RATELIMIT_ALERT_THRESHOLD",
    "RATELIMIT_ALERT_EMAILS",
    "RATELIMIT_ALERT_WEBHOOK",
    "DEFAULT_FROM_EMAIL",
    "RATELIMIT_FAIL_OPEN",
    "RATELIMIT_DEFAULT_LIMIT",
    "RATELIMIT_DATABASE_URL",
    "RATELIMIT_SMTP_URL",
    "RATELIMIT_TRUSTED_PROXIES",
    "RATELIMIT_ALERT_WEBHOOK_SECRET",
    "RATELIMIT_ALERT_COOLDOWN_MINUTES",
    "RATELIMIT_ALERT_TIMEOUT_MS",
    "RATELIMIT_ALERT_CA_FILE",
};

/// The environment variable naming the settings file.
inline constexpr std::string_view settings_file_variable = "RATELIMIT_SETTINGS";

namespace detail {

[[noreturn]] inline void bad_setting(std::string_view key, std::string_view origin,
                                     std::string_view what) {
    throw config_error("setting " + std::string(key) + " (" + std::string(origin) +
                       "): " + std::string(what));
}

/// `s` in double quotes as one printable line (detail/text.hpp).
inline std::string quoted_value(std::string_view s) {
    std::string out = "\"";
    append_printable(out, s);
    return out + "\"";
}

inline bool has_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7F;
    });
}

inline bool parse_bool_text(std::string_view s, bool& out) noexcept {
    std::string lower;
    for (const char c : s) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") {
        out = true;
        return true;
    }
    if (lower == "0" || lower == "false" || lower == "no" || lower == "off") {
        out = false;
        return true;
    }
    return false;
}

/// Digits only (no sign, no spaces), at most `max`.
inline bool parse_count_text(std::string_view s, std::int64_t max, std::int64_t& out) noexcept {
    if (s.empty() || s.size() > 18) return false;
    for (const char c : s)
        if (c < '0' || c > '9') return false;
    std::int64_t v = 0;
    const auto res = std::from_chars(s.data(), s.data() + s.size(), v);
    if (res.ec != std::errc{} || res.ptr != s.data() + s.size() || v > max) return false;
    out = v;
    return true;
}

/// A plain e-mail address: local@domain, no spaces, controls, commas or angle brackets.
inline bool valid_email(std::string_view s) noexcept {
    const auto at = s.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == s.size()) return false;
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7F || c == ',' || c == '<' || c == '>' || c == '"' || c == '(' ||
            c == ')' || c == ';' || c == '\\')
            return false;
    }
    return true;
}

/// `scheme://` followed by a non-empty host; no spaces or control characters.
inline bool valid_url(std::string_view s,
                      std::initializer_list<std::string_view> schemes) noexcept {
    if (has_control(s) || s.find(' ') != std::string_view::npos) return false;
    for (const auto scheme : schemes) {
        if (s.size() > scheme.size() + 3 && s.substr(0, scheme.size()) == scheme &&
            s.substr(scheme.size(), 3) == "://") {
            const auto rest = s.substr(scheme.size() + 3);
            return !rest.empty() && rest.front() != '/' && rest.front() != ':';
        }
    }
    return false;
}

inline bool valid_database_url(std::string_view s) noexcept {
    if (has_control(s)) return false;
    if (s.substr(0, 10) == "sqlite:///") return s.size() > 10 || s == "sqlite:///:memory:";
    if (s == "sqlite://") return true;  // in-memory, as SQLAlchemy
    return valid_url(s, {"postgresql", "postgres"});
}

/// An address or CIDR block exactly as the middleware's trusted-proxy list
/// (`cidr_list`) parses it: keys/cidr.hpp's `cidr::parse`.
inline bool valid_cidr(std::string_view s) noexcept { return cidr::parse(s).has_value(); }

inline std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    while (true) {
        const auto comma = text.find(',');
        const auto item = trim(text.substr(0, comma));
        if (!item.empty()) out.emplace_back(item);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

inline void check_list(std::string_view key, std::string_view origin,
                       const std::vector<std::string>& items) {
    for (const auto& item : items) {
        if (key == "RATELIMIT_ALERT_EMAILS" && !valid_email(item))
            bad_setting(key, origin, "not an e-mail address: " + quoted_value(item));
        if (key == "RATELIMIT_TRUSTED_PROXIES" && !valid_cidr(item))
            bad_setting(key, origin, "not an IP address or CIDR block: " + quoted_value(item));
    }
}

/// Validates and stores a string-valued setting (everything but the lists).
inline void assign_scalar(settings& s, std::string_view key, std::string_view origin,
                          std::string_view text) {
    std::int64_t n = 0;
    if (key == "RATELIMIT_LOG_EVENTS" || key == "RATELIMIT_FAIL_OPEN") {
        bool b = false;
        if (!parse_bool_text(text, b))
            bad_setting(key, origin,
                        "expected true/false (or 1/0, yes/no, on/off), got " + quoted_value(text));
        (key == "RATELIMIT_LOG_EVENTS" ? s.log_events : s.fail_open) = b;
    } else if (key == "RATELIMIT_ALERT_THRESHOLD") {
        if (!parse_count_text(text, 1'000'000'000'000, n))
            bad_setting(key, origin, "expected a non-negative integer, got " + quoted_value(text));
        s.alert_threshold = n;
    } else if (key == "RATELIMIT_ALERT_COOLDOWN_MINUTES") {
        if (!parse_count_text(text, 10'000'000, n))
            bad_setting(key, origin,
                        "expected a non-negative number of minutes, got " + quoted_value(text));
        s.alert_cooldown_minutes = n;
    } else if (key == "RATELIMIT_ALERT_TIMEOUT_MS") {
        if (!parse_count_text(text, 3'600'000, n) || n == 0)
            bad_setting(key, origin,
                        "expected milliseconds between 1 and 3600000, got " + quoted_value(text));
        s.alert_timeout = std::chrono::milliseconds(n);
    } else if (key == "RATELIMIT_ALERT_WEBHOOK") {
        if (!text.empty() && !valid_url(text, {"http", "https"}))
            bad_setting(key, origin,
                        "expected an http:// or https:// URL, got " + quoted_value(text));
        s.alert_webhook = std::string(text);
    } else if (key == "DEFAULT_FROM_EMAIL") {
        if (!valid_email(text))
            bad_setting(key, origin, "not an e-mail address: " + quoted_value(text));
        s.default_from_email = std::string(text);
    } else if (key == "RATELIMIT_DEFAULT_LIMIT") {
        if (!text.empty()) {
            try {
                (void)parse_rate(text);
            } catch (const config_error& e) {
                bad_setting(key, origin, e.what());
            }
        }
        s.default_limit = std::string(text);
    } else if (key == "RATELIMIT_DATABASE_URL") {
        if (!valid_database_url(text))
            bad_setting(key, origin,
                        "expected sqlite:///PATH or postgresql://..., got " + quoted_value(text));
        s.database_url = std::string(text);
    } else if (key == "RATELIMIT_SMTP_URL") {
        if (!valid_url(text, {"smtp", "smtps"}))
            bad_setting(key, origin,
                        "expected smtp://host[:port] or smtps://..., got " + quoted_value(text));
        s.smtp_url = std::string(text);
    } else if (key == "RATELIMIT_ALERT_WEBHOOK_SECRET") {
        s.alert_webhook_secret = std::string(text);
    } else if (key == "RATELIMIT_ALERT_CA_FILE") {
        if (has_control(text)) bad_setting(key, origin, "control character in file name");
        s.alert_ca_file = std::string(text);
    } else {
        throw config_error("unknown setting " + quoted_value(key) + " (" + std::string(origin) +
                           ")");
    }
}

inline bool is_list_setting(std::string_view key) noexcept {
    return key == "RATELIMIT_ALERT_EMAILS" || key == "RATELIMIT_TRUSTED_PROXIES";
}

inline void assign_list(settings& s, std::string_view key, std::string_view origin,
                        std::vector<std::string> items) {
    check_list(key, origin, items);
    (key == "RATELIMIT_ALERT_EMAILS" ? s.alert_emails : s.trusted_proxies) = std::move(items);
}

inline void assign_json(settings& s, std::string_view key, std::string_view origin,
                        const json_value& v) {
    if (std::find(setting_names.begin(), setting_names.end(), key) == setting_names.end())
        throw config_error("unknown setting " + quoted_value(key) + " (" + std::string(origin) +
                           ")");
    if (is_list_setting(key)) {
        const json_array* arr = v.as_array();
        if (arr == nullptr)
            bad_setting(key, origin,
                        "expected a list of strings, got " + std::string(v.type_name()));
        std::vector<std::string> items;
        for (const auto& item : *arr) {
            const std::string* str = item.as_string();
            if (str == nullptr)
                bad_setting(key, origin,
                            "expected a list of strings, found " + std::string(item.type_name()) +
                                " in it");
            items.push_back(*str);
        }
        assign_list(s, key, origin, std::move(items));
        return;
    }
    if (key == "RATELIMIT_LOG_EVENTS" || key == "RATELIMIT_FAIL_OPEN") {
        const bool* b = v.as_bool();
        if (b == nullptr)
            bad_setting(key, origin, "expected true or false, got " + std::string(v.type_name()));
        assign_scalar(s, key, origin, *b ? "true" : "false");
    } else if (key == "RATELIMIT_ALERT_THRESHOLD" || key == "RATELIMIT_ALERT_COOLDOWN_MINUTES" ||
               key == "RATELIMIT_ALERT_TIMEOUT_MS") {
        if (v.is_null() && key == "RATELIMIT_ALERT_THRESHOLD") {  // Python's None: disabled
            s.alert_threshold = 0;
            return;
        }
        const auto* num = v.as_number();
        if (num == nullptr)
            bad_setting(key, origin, "expected an integer, got " + std::string(v.type_name()));
        assign_scalar(s, key, origin, num->text);
    } else {
        if (v.is_null() &&
            (key == "RATELIMIT_ALERT_WEBHOOK" || key == "RATELIMIT_DEFAULT_LIMIT" ||
             key == "RATELIMIT_ALERT_WEBHOOK_SECRET" || key == "RATELIMIT_ALERT_CA_FILE")) {
            assign_scalar(s, key, origin, "");
            return;
        }
        const std::string* str = v.as_string();
        if (str == nullptr)
            bad_setting(key, origin, "expected a string, got " + std::string(v.type_name()));
        assign_scalar(s, key, origin, *str);
    }
}

}  // namespace detail

/// Sets one key from its text form, as the environment and command-line flags give
/// it (lists comma-separated). `origin` names the source in error messages
/// (e.g. "--threshold"). This is the overlay helper for command-line flags.
inline void apply_setting(settings& s, std::string_view key, std::string_view text,
                          std::string_view origin = "command line") {
    if (std::find(setting_names.begin(), setting_names.end(), key) == setting_names.end())
        throw config_error("unknown setting " + detail::quoted_value(key) + " (" +
                           std::string(origin) + ")");
    if (detail::is_list_setting(key)) {
        detail::assign_list(s, key, origin, detail::split_list(text));
    } else {
        detail::assign_scalar(s, key, origin, detail::trim(text));
    }
}

/// Overlays a JSON settings document (an object of the keys above) onto `s`.
/// `origin` (usually the file name) appears in error messages.
inline void apply_settings_json(settings& s, std::string_view json, std::string_view origin) {
    const detail::json_value doc = detail::json_reader::parse(json, origin);
    const detail::json_object* obj = doc.as_object();
    if (obj == nullptr)
        throw config_error(std::string(origin) + ": the settings file must hold a JSON object");
    for (const auto& [key, value] : *obj) detail::assign_json(s, key, origin, value);
}

/// Overlays every known variable present and non-empty in `env`. Empty variables
/// count as unset. Variables outside setting_names are ignored.
inline void apply_environment(settings& s, const environment_map& env) {
    for (const auto key : setting_names) {
        const auto it = env.find(key);
        if (it == env.end() || detail::trim(it->second).empty()) continue;
        apply_setting(s, key, it->second, "environment");
    }
}

/// The process environment restricted to the variables settings read.
inline environment_map process_environment() {
    environment_map env;
    const auto grab = [&env](std::string_view name) {
        if (const char* v = std::getenv(std::string(name).c_str()))
            env.emplace(std::string(name), v);
    };
    for (const auto key : setting_names) grab(key);
    grab(settings_file_variable);
    return env;
}

/// Reads a whole file; config_error naming it when it cannot be read.
inline std::string read_settings_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) throw config_error("cannot read settings file \"" + path + "\"");
    std::string text;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) throw config_error("cannot read settings file \"" + path + "\"");
    return text;
}

/// Defaults, then the settings file (`file`, else RATELIMIT_SETTINGS from `env`),
/// then the environment. Flags are applied afterwards by the caller (apply_setting).
/// Throws config_error naming the file or key at fault.
inline settings load_settings(std::optional<std::string> file, const environment_map& env) {
    settings s;
    if (!file) {
        const auto it = env.find(settings_file_variable);
        if (it != env.end() && !it->second.empty()) file = it->second;
    }
    if (file) apply_settings_json(s, read_settings_file(*file), *file);
    apply_environment(s, env);
    return s;
}

/// load_settings over the process environment.
inline settings load_settings(std::optional<std::string> file = std::nullopt) {
    return load_settings(std::move(file), process_environment());
}

}  // namespace smart_ratelimit
