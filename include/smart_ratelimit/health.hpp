// smart_ratelimit/health.hpp
// A health report: named checks (database reachable, migrations current, event
// writer alive, storage breakers closed), each ok or not with a one-line detail, as
// served by the dashboard's health endpoint and printed by `smart-ratelimit health`.
// Standard headers only; the checks themselves live with what they check.
#pragma once

#include <smart_ratelimit/detail/json_escape.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit {

/// One check: `name` (a stable identifier such as "database", "migrations",
/// "event_writer", "breaker:redis"), whether it passed, and a short human detail.
struct health_check {
    std::string name;
    bool ok = true;
    std::string detail;

    friend bool operator==(const health_check&, const health_check&) = default;
};

/// Every check of one probe. Healthy when every check passed (and vacuously when
/// there is none). Thread safety: a plain value.
struct health_report {
    std::vector<health_check> checks;

    bool ok() const noexcept {
        for (const auto& c : checks)
            if (!c.ok) return false;
        return true;
    }

    health_report& add(std::string name, bool ok, std::string detail = {}) {
        checks.push_back(health_check{std::move(name), ok, std::move(detail)});
        return *this;
    }

    /// Appends every check of `other`.
    health_report& merge(const health_report& other) {
        checks.insert(checks.end(), other.checks.begin(), other.checks.end());
        return *this;
    }

    /// `{"status":"ok"|"unhealthy","checks":[{"name":...,"ok":...,"detail":...}]}`,
    /// escaped like every JSON the library writes (safe in HTML).
    std::string to_json() const {
        std::string out = R"({"status":)";
        detail::append_json_string(out, ok() ? "ok" : "unhealthy");
        out += R"(,"checks":[)";
        for (std::size_t i = 0; i < checks.size(); ++i) {
            if (i != 0) out += ',';
            out += R"({"name":)";
            detail::append_json_string(out, checks[i].name);
            out += R"(,"ok":)";
            out += checks[i].ok ? "true" : "false";
            out += R"(,"detail":)";
            detail::append_json_string(out, checks[i].detail);
            out += '}';
        }
        out += "]}";
        return out;
    }
};

}  // namespace smart_ratelimit
