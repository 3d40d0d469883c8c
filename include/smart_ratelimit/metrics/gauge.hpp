// smart_ratelimit/metrics/gauge.hpp
// `gauge`: one series whose value goes up and down (set or add), kept in one
// atomic double. For values another component already holds, prefer a collector
// that reads them at scrape time (see collectors.hpp).
#pragma once

#include <smart_ratelimit/metrics/detail/labels.hpp>
#include <smart_ratelimit/metrics/exposition.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <utility>

namespace smart_ratelimit::metrics {

/// A value that goes up and down. A handle: copies share the value.
///
/// | expression       | type     | meaning                                          |
/// |------------------|----------|--------------------------------------------------|
/// | `g.set(v)`       | `void`   | sets the value                                   |
/// | `g.add(d)`       | `void`   | adds d (may be negative; a compare-exchange loop) |
/// | `g.value()`      | `double` | the value                                        |
/// | `g.collect(out)` | `void`   | declares the family and writes the sample        |
///
/// Thread safety: every member may be called concurrently.
class gauge {
public:
    /// Throws config_error on an invalid metric or label name.
    gauge(std::string name, std::string help, label_set labels = {})
        : s_(std::make_shared<state>()) {
        s_->name = std::move(name);
        s_->help = std::move(help);
        s_->labels = std::move(labels);
        detail::check_metric(s_->name, s_->labels);
    }

    void set(double v) const noexcept { s_->v.store(v, std::memory_order_relaxed); }
    void add(double d) const noexcept {
        double cur = s_->v.load(std::memory_order_relaxed);
        while (!s_->v.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {}
    }
    double value() const noexcept { return s_->v.load(std::memory_order_relaxed); }

    void collect(exposition& out) const {
        out.declare(s_->name, metric_type::gauge, s_->help);
        const auto l = detail::views(s_->labels);
        out.sample(s_->name, std::span<const label>(l), value());
    }

    const std::string& name() const noexcept { return s_->name; }

private:
    struct state {
        std::string name, help;
        label_set labels;
        std::atomic<double> v{0.0};
    };
    std::shared_ptr<state> s_;
};

}  // namespace smart_ratelimit::metrics
