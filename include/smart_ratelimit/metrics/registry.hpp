// smart_ratelimit/metrics/registry.hpp
// `registry`: the collectors of one scrape endpoint. Metrics, helpers and plain
// callbacks are added once; scrape() runs them in order and returns the text
// exposition (format 0.0.4). Values other components already count are read here,
// at scrape time, and cost nothing on the request path.
#pragma once

#include <smart_ratelimit/metrics/exposition.hpp>

#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit::metrics {

/// The collectors behind one `/metrics` endpoint. Not a global: make one per
/// service and hand it (by reference) to the endpoint.
///
/// | expression             | type           | meaning                                          |
/// |------------------------|----------------|--------------------------------------------------|
/// | `r.add(c)`             | `collector_id` | keeps a copy of collector `c` (metrics are handles: the copy shares their counts) |
/// | `r.add_callback(f)`    | `collector_id` | keeps `f`, called as f(exposition&) at each scrape |
/// | `r.remove(id)`         | `bool`         | forgets a collector (do so before what it reads is destroyed) |
/// | `r.scrape()`           | `std::string`  | the exposition: every collector's families, HELP and TYPE once each |
/// | `r.scrape(s)`          | `void`         | the same, appended to string `s`                  |
/// | `r.collector_failures()` | `std::uint64_t` | collectors that threw during a scrape (their samples of that scrape are left out) |
/// | `registry::content_type` | `std::string_view` | the Content-Type to serve the text with      |
///
/// Thread safety: every member may be called concurrently; scrapes are serialized
/// and a collector runs on the scraping thread.
class registry {
public:
    using collector_id = std::uint64_t;
    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

    registry() = default;
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    template <collector C>
    collector_id add(C c) {
        return add_callback([c = std::move(c)](exposition& out) { c.collect(out); });
    }

    template <std::invocable<exposition&> F>
    collector_id add_callback(F f) {
        std::lock_guard<std::mutex> lock(m_);
        entries_.push_back({++last_id_, std::function<void(exposition&)>(std::move(f))});
        return last_id_;
    }

    bool remove(collector_id id) {
        std::lock_guard<std::mutex> lock(m_);
        return std::erase_if(entries_, [id](const entry& e) { return e.id == id; }) != 0;
    }

    void scrape(std::string& out) const {
        exposition e;
        {
            std::lock_guard<std::mutex> lock(m_);
            for (const auto& entry : entries_) {
                auto mark = e.mark();
                try {
                    entry.collect(e);
                } catch (...) {
                    e.rollback(mark);
                    failures_.fetch_add(1, std::memory_order_relaxed);
                }
            }
        }
        e.write_to(out);
    }
    std::string scrape() const {
        std::string out;
        scrape(out);
        return out;
    }

    std::uint64_t collector_failures() const noexcept {
        return failures_.load(std::memory_order_relaxed);
    }

private:
    struct entry {
        collector_id id;
        std::function<void(exposition&)> collect;
    };
    mutable std::mutex m_;
    std::vector<entry> entries_;
    collector_id last_id_ = 0;
    mutable std::atomic<std::uint64_t> failures_{0};
};

}  // namespace smart_ratelimit::metrics
