// tests/support/event_store_support.hpp
// Helpers for the event store and CLI tests: temporary directories, one fresh
// PostgreSQL database per test on the shared server; the private PostgreSQL
// server a test may kill and restart is support/private_postgres.hpp.
#pragma once

#include "support/private_postgres.hpp"
#include "support/temp_dir.hpp"
#include "support/test_env.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <smart_ratelimit/soci.hpp>

namespace srl_test {

namespace srl = smart_ratelimit;
namespace fs = std::filesystem;

inline std::string random_suffix() {
    static std::mt19937_64 rng{std::random_device{}()};
    return std::to_string(rng() % 1'000'000'000ULL);
}

/// A fresh, empty PostgreSQL database on the shared test server, dropped on
/// destruction. `url()` is empty when no server is configured.
class pg_database {
public:
    explicit pg_database(const std::string& tag) {
        const auto base = postgres_url();
        if (!base) return;
        base_ = *base;
        name_ = "srl_" + tag + "_" + std::to_string(::getpid()) + "_" + random_suffix();
        auto admin = srl::soci::open_session(srl::soci::parse_database_url(base_));
        *admin << "CREATE DATABASE " + name_;
        url_ = base_.substr(0, base_.rfind('/') + 1) + name_;
    }
    ~pg_database() {
        if (url_.empty()) return;
        try {
            auto admin = srl::soci::open_session(srl::soci::parse_database_url(base_));
            *admin << "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)";
        } catch (...) {}
    }
    pg_database(const pg_database&) = delete;
    pg_database& operator=(const pg_database&) = delete;
    const std::string& url() const { return url_; }
    explicit operator bool() const { return !url_.empty(); }

private:
    std::string base_, name_, url_;
};

/// A deterministic event: microsecond timestamps, optional fields set.
inline srl::event sample_event(std::int64_t seq, const std::string& key = "ip:203.0.113.5",
                               bool allowed = true) {
    return srl::make_event(
        srl::event_time{std::chrono::microseconds{1'764'000'000'000'000 + seq * 1'000'003}}, key,
        "/api/login", "POST", allowed, seq, 100, "203.0.113.5",
        seq % 2 == 0 ? std::optional<std::string_view>{"42"} : std::nullopt);
}

/// Writes `old` sample events 40 days old and `recent` ones a day old (the retention
/// tests' history: a 30-day cleanup deletes exactly the old ones).
inline void write_aged_events(srl::soci::event_store& store, int old, int recent) {
    const auto now =
        std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    std::vector<srl::event> in;
    for (int i = 0; i < old; ++i) {
        auto e = sample_event(i);
        e.timestamp = now - std::chrono::hours{24 * 40} - std::chrono::microseconds{i};
        in.push_back(e);
    }
    for (int i = 0; i < recent; ++i) {
        auto e = sample_event(100 + i);
        e.timestamp = now - std::chrono::hours{24};
        in.push_back(e);
    }
    if (store.write_batch(in).written != in.size())
        throw std::runtime_error("write_aged_events: write failed");
}

}  // namespace srl_test

namespace Catch {
template <>
struct StringMaker<smart_ratelimit::event> {
    static std::string convert(const smart_ratelimit::event& e) {
        std::string s = "{ts=" + std::to_string(e.timestamp.time_since_epoch().count()) +
                        " key=" + e.key + " rule=" + e.rule_name + " path=" + e.path +
                        " method=" + e.method + " allowed=" + (e.allowed ? "1" : "0") +
                        " count=" + std::to_string(e.count) + " limit=" + std::to_string(e.limit) +
                        " ip=" + (e.ip_address ? *e.ip_address : "null") +
                        " user=" + (e.user_id ? *e.user_id : "null") + "}";
        return s;
    }
};
}  // namespace Catch
