// smart_ratelimit/metrics/counter.hpp
// Counters: `counter`, one series counted in per-thread cells (a relaxed load and
// store on the caller's own cache line, summed at scrape time), for hot paths; and
// `labeled_counter`, a family keyed by label values behind a mutex, for cold paths
// such as alerts sent.
#pragma once

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/metrics/detail/labels.hpp>
#include <smart_ratelimit/metrics/detail/per_thread.hpp>
#include <smart_ratelimit/metrics/exposition.hpp>

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit::metrics {

/// A monotonically increasing count (one series), cheap to bump from any thread.
/// A handle: copies share the count. Name it `..._total` (promtool's lint asks so).
///
/// | expression        | type            | meaning                                       |
/// |-------------------|-----------------|-----------------------------------------------|
/// | `c.inc(n = 1)`    | `void`          | adds n (a relaxed store to this thread's cell; the first call on a thread takes a lock once) |
/// | `c.value()`       | `std::uint64_t` | the sum over all threads (takes the pool's lock) |
/// | `c.collect(out)`  | `void`          | declares the family and writes the sample      |
///
/// Thread safety: every member may be called concurrently.
class counter {
public:
    /// Throws config_error on an invalid metric or label name.
    counter(std::string name, std::string help, label_set labels = {})
        : s_(std::make_shared<state>(std::move(name), std::move(help), std::move(labels))) {
        detail::check_metric(s_->name, s_->labels);
    }

    void inc(std::uint64_t n = 1) const { detail::owner_add(s_->cells->local().v, n); }

    std::uint64_t value() const {
        std::uint64_t sum = 0;
        s_->cells->for_each([&](const cell& c) { sum += c.v.load(std::memory_order_relaxed); });
        return sum;
    }

    void collect(exposition& out) const {
        out.declare(s_->name, metric_type::counter, s_->help);
        const auto l = detail::views(s_->labels);
        out.sample(s_->name, std::span<const label>(l), value());
    }

    const std::string& name() const noexcept { return s_->name; }

private:
    struct cell {
        explicit cell(std::size_t) noexcept {}
        alignas(64) std::atomic<std::uint64_t> v{0};
    };
    struct state {
        state(std::string n, std::string h, label_set l)
            : name(std::move(n)), help(std::move(h)), labels(std::move(l)) {}
        std::string name, help;
        label_set labels;
        std::shared_ptr<detail::cell_pool<cell>> cells =
            std::make_shared<detail::cell_pool<cell>>();
    };
    std::shared_ptr<state> s_;
};

/// A counter family with label names fixed at construction and a series per
/// distinct tuple of label values, created on first use (or by touch()). For cold
/// paths: every add() takes a mutex. A handle: copies share the counts.
///
/// | expression               | type            | meaning                                  |
/// |--------------------------|-----------------|------------------------------------------|
/// | `c.add({v1, v2...}, n)`  | `void`          | adds n to the series with these label values (one per label name; config_error otherwise) |
/// | `c.touch({v1, v2...})`   | `void`          | makes the series exist with 0 (so dashboards see it before it counts) |
/// | `c.value({v1, v2...})`   | `std::uint64_t` | the count of that series (0 if absent)   |
/// | `c.collect(out)`         | `void`          | one sample per series, in label-value order |
///
/// Thread safety: every member may be called concurrently.
class labeled_counter {
public:
    labeled_counter(std::string name, std::string help, std::vector<std::string> label_names)
        : s_(std::make_shared<state>()) {
        s_->name = std::move(name);
        s_->help = std::move(help);
        s_->label_names = std::move(label_names);
        detail::check_metric(s_->name, std::vector<std::string_view>(s_->label_names.begin(),
                                                                     s_->label_names.end()));
    }

    void add(std::initializer_list<std::string_view> values, std::uint64_t n = 1) const {
        auto key = make_key(values);
        std::lock_guard<std::mutex> lock(s_->m);
        s_->series[std::move(key)] += n;
    }
    void touch(std::initializer_list<std::string_view> values) const { add(values, 0); }

    std::uint64_t value(std::initializer_list<std::string_view> values) const {
        const auto key = make_key(values);
        std::lock_guard<std::mutex> lock(s_->m);
        const auto it = s_->series.find(key);
        return it == s_->series.end() ? 0 : it->second;
    }

    void collect(exposition& out) const {
        out.declare(s_->name, metric_type::counter, s_->help);
        std::vector<std::pair<std::vector<std::string>, std::uint64_t>> copy;
        {
            std::lock_guard<std::mutex> lock(s_->m);
            copy.assign(s_->series.begin(), s_->series.end());
        }
        std::vector<label> l(s_->label_names.size());
        for (const auto& [values, n] : copy) {
            for (std::size_t i = 0; i < l.size(); ++i) l[i] = {s_->label_names[i], values[i]};
            out.sample(s_->name, std::span<const label>(l), n);
        }
    }

    const std::string& name() const noexcept { return s_->name; }

private:
    std::vector<std::string> make_key(std::initializer_list<std::string_view> values) const {
        if (values.size() != s_->label_names.size())
            throw config_error("metric \"" + s_->name + "\" takes " +
                               std::to_string(s_->label_names.size()) + " label values, got " +
                               std::to_string(values.size()));
        return std::vector<std::string>(values.begin(), values.end());
    }

    struct state {
        std::string name, help;
        std::vector<std::string> label_names;
        std::mutex m;
        std::map<std::vector<std::string>, std::uint64_t> series;
    };
    std::shared_ptr<state> s_;
};

}  // namespace smart_ratelimit::metrics
