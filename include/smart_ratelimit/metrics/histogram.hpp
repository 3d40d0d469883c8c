// smart_ratelimit/metrics/histogram.hpp
// `histogram`: observations counted into fixed buckets in per-thread cells (relaxed
// stores on the observing thread's own block, merged at scrape time), written as
// cumulative `_bucket{le=...}` lines with +Inf, `_sum` and `_count`. Also the
// default latency buckets, in seconds from 1 µs to 10 s.
#pragma once

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/metrics/detail/labels.hpp>
#include <smart_ratelimit/metrics/detail/per_thread.hpp>
#include <smart_ratelimit/metrics/exposition.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace smart_ratelimit::metrics {

/// Upper bounds in seconds for request latencies: 1, 2.5, 5 per decade from 1 µs
/// to 5 s, then 10 s (22 buckets plus +Inf).
inline std::vector<double> latency_buckets() {
    return {1e-6, 2.5e-6, 5e-6,   1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
            5e-3, 1e-2,   2.5e-2, 5e-2, 0.1,    0.25, 0.5,  1.0,    2.5,  5.0,  10.0};
}

/// A snapshot of a histogram: per-bucket (not cumulative) counts, the last one
/// above every bound, and the sum of the observations.
struct histogram_snapshot {
    std::vector<std::uint64_t> counts;
    double sum = 0;
    std::uint64_t count() const noexcept {
        std::uint64_t n = 0;
        for (auto c : counts) n += c;
        return n;
    }
};

/// A distribution of observed values. A handle: copies share the counts.
///
/// | expression         | type                 | meaning                                   |
/// |--------------------|----------------------|-------------------------------------------|
/// | `h.observe(v)`     | `void`               | counts v (a double; NaN is ignored) in the first bucket whose bound is >= v |
/// | `h.observe(d)`     | `void`               | the same for a duration, in seconds        |
/// | `h.snapshot()`     | `histogram_snapshot` | the counts summed over all threads          |
/// | `h.bounds()`       | `const std::vector<double>&` | the upper bounds                   |
/// | `h.collect(out)`   | `void`               | declares the family and writes the series   |
///
/// Thread safety: every member may be called concurrently; observe() writes only
/// the calling thread's cells (the first call on a thread takes a lock once).
class histogram {
public:
    /// Throws config_error on an invalid name, or bounds that are not finite and
    /// strictly ascending.
    histogram(std::string name, std::string help, std::vector<double> bounds = latency_buckets(),
              label_set labels = {})
        : s_(std::make_shared<state>(std::move(name), std::move(help), std::move(bounds),
                                     std::move(labels))) {
        detail::check_metric(s_->name, s_->labels);
        for (std::size_t i = 0; i < s_->bounds.size(); ++i)
            if (!std::isfinite(s_->bounds[i]) || (i > 0 && !(s_->bounds[i - 1] < s_->bounds[i])))
                throw config_error("histogram \"" + s_->name +
                                   "\": bucket bounds must be finite and strictly ascending");
    }

    void observe(double v) const {
        if (std::isnan(v)) return;
        const auto& b = s_->bounds;
        const auto i =
            static_cast<std::size_t>(std::lower_bound(b.begin(), b.end(), v) - b.begin());
        cell& c = s_->cells->local();
        detail::owner_add(c.counts[i], 1);
        c.sum.store(c.sum.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    }
    template <class Rep, class Period>
    void observe(std::chrono::duration<Rep, Period> d) const {
        observe(std::chrono::duration<double>(d).count());
    }

    histogram_snapshot snapshot() const {
        histogram_snapshot s;
        s.counts.assign(s_->bounds.size() + 1, 0);
        s_->cells->for_each([&](const cell& c) {
            for (std::size_t i = 0; i < s.counts.size(); ++i)
                s.counts[i] += c.counts[i].load(std::memory_order_relaxed);
            s.sum += c.sum.load(std::memory_order_relaxed);
        });
        return s;
    }

    const std::vector<double>& bounds() const noexcept { return s_->bounds; }
    const std::string& name() const noexcept { return s_->name; }

    void collect(exposition& out) const {
        out.declare(s_->name, metric_type::histogram, s_->help);
        const auto s = snapshot();
        const auto l = detail::views(s_->labels);
        out.histogram(s_->name, l, s_->bounds, s.counts, s.sum);
    }

private:
    struct cell {
        explicit cell(std::size_t buckets)
            : counts(std::make_unique<std::atomic<std::uint64_t>[]>(buckets + 1)) {}
        std::unique_ptr<std::atomic<std::uint64_t>[]> counts;
        std::atomic<double> sum{0.0};
        char pad[64];  // keep the next block's hot words off this line
    };
    struct state {
        state(std::string n, std::string h, std::vector<double> b, label_set l)
            : name(std::move(n)),
              help(std::move(h)),
              labels(std::move(l)),
              bounds(std::move(b)),
              cells(std::make_shared<detail::cell_pool<cell>>(bounds.size())) {}
        std::string name, help;
        label_set labels;
        std::vector<double> bounds;
        std::shared_ptr<detail::cell_pool<cell>> cells;
    };
    std::shared_ptr<state> s_;
};

}  // namespace smart_ratelimit::metrics
