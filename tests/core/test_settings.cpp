// tests/core/test_settings.cpp
// The settings object: defaults, the JSON file, the environment
// winning over the file, a flag winning over both, list parsing, and errors
// that name the key (and the file) for unknown keys and bad values.
#include <catch2/catch.hpp>

#include <smart_ratelimit/settings.hpp>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include <stdio.h>
#include <unistd.h>

namespace srl = smart_ratelimit;
using Catch::Matchers::Contains;

namespace {

/// A settings file in the temp dir, removed on destruction.
struct settings_file {
    explicit settings_file(const std::string& text) {
        char name[] = "/tmp/srl-settings-XXXXXX";
        const int fd = ::mkstemp(name);
        REQUIRE(fd >= 0);
        path = name;
        std::FILE* f = ::fdopen(fd, "wb");
        std::fwrite(text.data(), 1, text.size(), f);
        std::fclose(f);
    }
    ~settings_file() { std::remove(path.c_str()); }
    std::string path;
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const srl::config_error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("settings default to a disabled, local setup", "[settings]") {
    const auto s = srl::load_settings(std::nullopt, srl::environment_map{});
    CHECK_FALSE(s.log_events);
    CHECK(s.alert_threshold == 0);
    CHECK_FALSE(s.alerts_enabled());
    CHECK(s.alert_emails.empty());
    CHECK(s.alert_webhook.empty());
    CHECK(s.default_from_email == "webmaster@localhost");
    CHECK_FALSE(s.fail_open);
    CHECK(s.default_limit.empty());
    CHECK(s.database_url == "sqlite:///smart_ratelimit.db");
    CHECK(s.smtp_url == "smtp://localhost:25");
    CHECK(s.trusted_proxies.empty());
    CHECK(s.alert_cooldown_minutes == 0);
    CHECK(s.alert_timeout == std::chrono::milliseconds(5000));
}

TEST_CASE("a JSON settings file sets every key", "[settings]") {
    settings_file f(R"({
        "RATELIMIT_LOG_EVENTS": true,
        "RATELIMIT_ALERT_THRESHOLD": 100,
        "RATELIMIT_ALERT_EMAILS": ["ops@example.com", "sec@example.com"],
        "RATELIMIT_ALERT_WEBHOOK": "https://hooks.example.com/ratelimit",
        "DEFAULT_FROM_EMAIL": "ratelimit@example.com",
        "RATELIMIT_FAIL_OPEN": true,
        "RATELIMIT_DEFAULT_LIMIT": "100/m",
        "RATELIMIT_DATABASE_URL": "postgresql://app:secret@db.internal:5432/app",
        "RATELIMIT_SMTP_URL": "smtps://mail.example.com:465",
        "RATELIMIT_TRUSTED_PROXIES": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"],
        "RATELIMIT_ALERT_WEBHOOK_SECRET": "k\u00e9y",
        "RATELIMIT_ALERT_COOLDOWN_MINUTES": 60,
        "RATELIMIT_ALERT_TIMEOUT_MS": 2500,
        "RATELIMIT_ALERT_CA_FILE": "/etc/ssl/ca.pem"
    })");
    const auto s = srl::load_settings(f.path, srl::environment_map{});
    CHECK(s.log_events);
    CHECK(s.alert_threshold == 100);
    CHECK(s.alert_emails == std::vector<std::string>{"ops@example.com", "sec@example.com"});
    CHECK(s.alert_webhook == "https://hooks.example.com/ratelimit");
    CHECK(s.default_from_email == "ratelimit@example.com");
    CHECK(s.fail_open);
    CHECK(s.default_limit == "100/m");
    CHECK(s.database_url == "postgresql://app:secret@db.internal:5432/app");
    CHECK(s.smtp_url == "smtps://mail.example.com:465");
    CHECK(s.trusted_proxies ==
          std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1"});
    CHECK(s.alert_webhook_secret == "k\xC3\xA9y");
    CHECK(s.alert_cooldown_minutes == 60);
    CHECK(s.alert_timeout == std::chrono::milliseconds(2500));
    CHECK(s.alert_ca_file == "/etc/ssl/ca.pem");
}

TEST_CASE("the environment beats the file and a flag beats both", "[settings]") {
    settings_file f(
        R"({"RATELIMIT_ALERT_THRESHOLD": 100, "RATELIMIT_ALERT_EMAILS": ["file@example.com"],
                        "RATELIMIT_DATABASE_URL": "sqlite:///file.db", "RATELIMIT_LOG_EVENTS": true})");
    const srl::environment_map env{
        {"RATELIMIT_ALERT_THRESHOLD", "250"},
        {"RATELIMIT_ALERT_EMAILS", " a@example.com, b@example.com ,,"},
        {"RATELIMIT_LOG_EVENTS", ""},  // empty counts as unset
        {"UNRELATED", "x"},
    };
    auto s = srl::load_settings(f.path, env);
    CHECK(s.alert_threshold == 250);
    CHECK(s.alert_emails == std::vector<std::string>{"a@example.com", "b@example.com"});
    CHECK(s.database_url == "sqlite:///file.db");
    CHECK(s.log_events);

    srl::apply_setting(s, "RATELIMIT_ALERT_THRESHOLD", "7", "--threshold");
    srl::apply_setting(s, "RATELIMIT_DATABASE_URL", "sqlite:////var/lib/app/events.db",
                       "--database");
    CHECK(s.alert_threshold == 7);
    CHECK(s.database_url == "sqlite:////var/lib/app/events.db");
}

TEST_CASE("RATELIMIT_SETTINGS names the file when no flag does", "[settings]") {
    settings_file f(R"({"RATELIMIT_ALERT_THRESHOLD": 42})");
    settings_file g(R"({"RATELIMIT_ALERT_THRESHOLD": 43})");
    const srl::environment_map env{{"RATELIMIT_SETTINGS", f.path}};
    CHECK(srl::load_settings(std::nullopt, env).alert_threshold == 42);
    CHECK(srl::load_settings(g.path, env).alert_threshold == 43);
    CHECK_THAT(error_of([] { srl::load_settings(std::string("/nonexistent/settings.json"), {}); }),
               Contains("/nonexistent/settings.json"));
}

TEST_CASE("environment values are parsed and validated", "[settings]") {
    const auto with = [](std::string key, std::string value) {
        return srl::load_settings(std::nullopt,
                                  srl::environment_map{{std::move(key), std::move(value)}});
    };
    CHECK(with("RATELIMIT_LOG_EVENTS", "yes").log_events);
    CHECK(with("RATELIMIT_LOG_EVENTS", "TRUE").log_events);
    CHECK_FALSE(with("RATELIMIT_FAIL_OPEN", "0").fail_open);
    CHECK(with("RATELIMIT_FAIL_OPEN", "on").fail_open);
    CHECK(with("RATELIMIT_TRUSTED_PROXIES", "10.0.0.1,::1, fd00::/8").trusted_proxies ==
          std::vector<std::string>{"10.0.0.1", "::1", "fd00::/8"});
    CHECK(with("RATELIMIT_ALERT_THRESHOLD", "0").alert_threshold == 0);
    CHECK(with("DEFAULT_FROM_EMAIL", "noreply@example.com").default_from_email ==
          "noreply@example.com");
    CHECK(with("RATELIMIT_DATABASE_URL", "sqlite:///relative/events.db").database_url ==
          "sqlite:///relative/events.db");
    CHECK(with("RATELIMIT_DEFAULT_LIMIT", "10/30s").default_limit == "10/30s");
}

TEST_CASE("bad values are errors that name the key and the source", "[settings]") {
    const auto env_error = [](std::string key, std::string value) {
        return error_of([&] {
            srl::load_settings(std::nullopt, srl::environment_map{{key, value}});
        });
    };
    CHECK(env_error("RATELIMIT_ALERT_THRESHOLD", "-1") ==
          "setting RATELIMIT_ALERT_THRESHOLD (environment): expected a non-negative integer, got "
          "\"-1\"");
    CHECK_THAT(env_error("RATELIMIT_ALERT_THRESHOLD", "ten"),
               Contains("RATELIMIT_ALERT_THRESHOLD"));
    CHECK_THAT(env_error("RATELIMIT_ALERT_THRESHOLD", "1e3"),
               Contains("RATELIMIT_ALERT_THRESHOLD"));
    CHECK_THAT(env_error("RATELIMIT_LOG_EVENTS", "maybe"), Contains("RATELIMIT_LOG_EVENTS"));
    CHECK_THAT(env_error("RATELIMIT_ALERT_EMAILS", "ops@example.com, not-an-address"),
               Contains("RATELIMIT_ALERT_EMAILS") && Contains("not-an-address"));
    CHECK_THAT(env_error("RATELIMIT_ALERT_EMAILS", "a@b.c\r\nBcc: x@y.z"),
               Contains("RATELIMIT_ALERT_EMAILS"));
    CHECK_THAT(env_error("RATELIMIT_ALERT_WEBHOOK", "ftp://hooks.example.com"),
               Contains("RATELIMIT_ALERT_WEBHOOK"));
    CHECK_THAT(env_error("RATELIMIT_SMTP_URL", "http://mail"), Contains("RATELIMIT_SMTP_URL"));
    CHECK_THAT(env_error("RATELIMIT_DATABASE_URL", "mysql://db/x"),
               Contains("RATELIMIT_DATABASE_URL"));
    CHECK_THAT(env_error("RATELIMIT_DEFAULT_LIMIT", "100/minutes"),
               Contains("RATELIMIT_DEFAULT_LIMIT") && Contains("100/minutes"));
    CHECK_THAT(env_error("RATELIMIT_TRUSTED_PROXIES", "10.0.0.0/33"),
               Contains("RATELIMIT_TRUSTED_PROXIES"));
    CHECK_THAT(env_error("RATELIMIT_TRUSTED_PROXIES", "10.0.0.256"), Contains("10.0.0.256"));
    CHECK_THAT(env_error("RATELIMIT_TRUSTED_PROXIES", "2001:db8:::1"),
               Contains("RATELIMIT_TRUSTED_PROXIES"));
    CHECK_THAT(env_error("RATELIMIT_ALERT_TIMEOUT_MS", "0"),
               Contains("RATELIMIT_ALERT_TIMEOUT_MS"));
    CHECK_THAT(env_error("DEFAULT_FROM_EMAIL", "nobody"), Contains("DEFAULT_FROM_EMAIL"));

    srl::settings s;
    CHECK_THAT(
        error_of([&] { srl::apply_setting(s, "RATELIMIT_ALERT_THRESHOLD", "x", "--threshold"); }),
        Contains("RATELIMIT_ALERT_THRESHOLD (--threshold)"));
    CHECK_THAT(error_of([&] { srl::apply_setting(s, "RATELIMIT_THRESHOLD", "1"); }),
               Contains("unknown setting \"RATELIMIT_THRESHOLD\""));
}

TEST_CASE("the settings file rejects unknown keys, wrong types and malformed JSON", "[settings]") {
    const auto file_error = [](const std::string& text) {
        settings_file f(text);
        return error_of([&] { srl::load_settings(f.path, srl::environment_map{}); });
    };
    CHECK_THAT(file_error(R"({"RATELIMIT_ALERT_THRESHHOLD": 100})"),
               Contains("unknown setting \"RATELIMIT_ALERT_THRESHHOLD\""));
    CHECK_THAT(
        file_error(R"({"RATELIMIT_ALERT_THRESHOLD": "100"})"),
        Contains("RATELIMIT_ALERT_THRESHOLD") && Contains("expected an integer, got a string"));
    CHECK_THAT(file_error(R"({"RATELIMIT_ALERT_THRESHOLD": 1.5})"),
               Contains("RATELIMIT_ALERT_THRESHOLD"));
    CHECK_THAT(file_error(R"({"RATELIMIT_ALERT_EMAILS": "ops@example.com"})"),
               Contains("RATELIMIT_ALERT_EMAILS") && Contains("expected a list of strings"));
    CHECK_THAT(file_error(R"({"RATELIMIT_ALERT_EMAILS": ["ops@example.com", 3]})"),
               Contains("RATELIMIT_ALERT_EMAILS"));
    CHECK_THAT(file_error(R"({"RATELIMIT_LOG_EVENTS": "true"})"), Contains("RATELIMIT_LOG_EVENTS"));
    CHECK_THAT(file_error(R"({"RATELIMIT_LOG_EVENTS": true,})"), Contains("invalid JSON"));
    CHECK_THAT(file_error("{\n  \"RATELIMIT_LOG_EVENTS\": tru\n}"), Contains(":2:"));
    CHECK_THAT(file_error(R"({"A": 1, "A": 2})"), Contains("duplicate member \"A\""));
    CHECK_THAT(file_error(R"(["RATELIMIT_LOG_EVENTS"])"), Contains("must hold a JSON object"));
    CHECK_THAT(file_error(""), Contains("invalid JSON"));
    // null disables the threshold, as Python's None does
    settings_file f(R"({"RATELIMIT_ALERT_THRESHOLD": null, "RATELIMIT_ALERT_WEBHOOK": null})");
    CHECK(srl::load_settings(f.path, srl::environment_map{}).alert_threshold == 0);
}

TEST_CASE("the JSON reader handles escapes, surrogate pairs and deep nesting", "[settings]") {
    using srl::detail::json_reader;
    const auto v = json_reader::parse(R"(["a\"b\\c\/\n", "\ud83d\ude00", -0.5e+3, [], {}])", "t");
    const auto* arr = v.as_array();
    REQUIRE(arr != nullptr);
    REQUIRE(arr->size() == 5);
    CHECK(*(*arr)[0].as_string() == "a\"b\\c/\n");
    CHECK(*(*arr)[1].as_string() == "\xF0\x9F\x98\x80");
    CHECK((*arr)[2].as_number()->text == "-0.5e+3");
    CHECK_THROWS_AS(json_reader::parse("\"\\ud83d\"", "t"), srl::config_error);
    CHECK_THROWS_AS(json_reader::parse("01", "t"), srl::config_error);
    CHECK_THROWS_AS(json_reader::parse("\"a\nb\"", "t"), srl::config_error);
    CHECK_THROWS_AS(json_reader::parse(std::string(100, '['), "t"), srl::config_error);
    CHECK_NOTHROW(json_reader::parse(std::string(60, '[') + std::string(60, ']'), "t"));
}
