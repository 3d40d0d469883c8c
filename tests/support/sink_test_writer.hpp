// tests/support/sink_test_writer.hpp
// A controllable event_batch_writer for the async_sink tests: it can block on a
// gate, fail whole calls, fail from a row on (the tail of a batch), reject poison
// rows, stop accepting after N rows, or throw. Waits are predicates on a
// condition variable with generous timeouts, never sleeps.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/sinks/batch_writer.hpp>

namespace srl_test {

namespace srl = smart_ratelimit;

/// A long bound for waits that only a broken sink would reach.
inline constexpr std::chrono::seconds generous{120};

inline srl::event make_test_event(const std::string& key, std::int64_t seq, bool allowed = true) {
    return srl::make_event(srl::event_time{std::chrono::microseconds{1'700'000'000'000'000 + seq}},
                           key, "/api/login", "POST", allowed, seq, 100, "203.0.113.5");
}

class controlled_writer {
    template <class F>
    void set(F f) {
        {
            std::lock_guard<std::mutex> lock(m_);
            f();
        }
        cv_.notify_all();
    }
    template <class F>
    auto locked(F f) const -> decltype(f()) {
        std::lock_guard<std::mutex> lock(m_);
        return f();
    }

public:
    enum class mode { accept, fail_all, throw_std, throw_other };

    srl::batch_result write_batch(std::span<const srl::event> rows) {
        std::unique_lock<std::mutex> lock(m_);
        ++calls_;
        call_sizes_.push_back(rows.size());
        cv_.notify_all();
        cv_.wait(lock, [&] { return gate_open_; });
        for (const auto& r : rows) seen_.push_back(r);
        if (mode_ == mode::throw_std) throw std::runtime_error("store exploded");
        if (mode_ == mode::throw_other) throw 42;
        if (mode_ == mode::fail_all) return {0, 0, rows.size()};
        if (fail_next_calls_ > 0) {
            --fail_next_calls_;
            return {0, 0, rows.size()};
        }
        srl::batch_result r;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const bool cut = written_.size() >= accept_limit_ || i == fail_from_row_;
            if (cut) {  // the store fails here: this row and the rest are failed
                r.failed = rows.size() - i;
                fail_from_row_ = npos;
                break;
            }
            if (rows[i].key.rfind("poison", 0) == 0) {
                ++r.invalid;
            } else {
                written_.push_back(rows[i]);
                ++r.written;
            }
        }
        cv_.notify_all();
        return r;
    }

    // ---- commands (from the test thread) ----
    void close_gate() {
        set([&] { gate_open_ = false; });
    }
    void open_gate() {
        set([&] { gate_open_ = true; });
    }
    void set_mode(mode m) {
        set([&] { mode_ = m; });
    }
    void fail_next_calls(std::size_t n) {
        set([&] { fail_next_calls_ = n; });
    }
    /// The next call writes rows before `row` and fails the rest.
    void fail_from_row_once(std::size_t row) {
        set([&] { fail_from_row_ = row; });
    }
    /// After `n` rows in total, every row fails.
    void accept_only(std::size_t n) {
        set([&] { accept_limit_ = n; });
    }

    // ---- observations ----
    /// Waits until the writer has been called `n` times; false on timeout.
    bool wait_calls(std::size_t n) {
        std::unique_lock<std::mutex> lock(m_);
        return cv_.wait_for(lock, generous, [&] { return calls_ >= n; });
    }
    /// Waits until `n` rows have been written; false on timeout.
    bool wait_written(std::size_t n) {
        std::unique_lock<std::mutex> lock(m_);
        return cv_.wait_for(lock, generous, [&] { return written_.size() >= n; });
    }
    std::vector<srl::event> written() const {
        return locked([&] { return written_; });
    }
    std::vector<srl::event> seen() const {
        return locked([&] { return seen_; });
    }
    std::vector<std::size_t> call_sizes() const {
        return locked([&] { return call_sizes_; });
    }
    std::size_t calls() const {
        return locked([&] { return calls_; });
    }

private:
    static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

    mutable std::mutex m_;
    std::condition_variable cv_;
    bool gate_open_ = true;
    mode mode_ = mode::accept;
    std::size_t fail_next_calls_ = 0;
    std::size_t fail_from_row_ = npos;
    std::size_t accept_limit_ = npos;
    std::size_t calls_ = 0;
    std::vector<std::size_t> call_sizes_;
    std::vector<srl::event> seen_;     // every row handed to the writer, retries included
    std::vector<srl::event> written_;  // rows accepted, in order
};

static_assert(srl::event_batch_writer<controlled_writer>);
static_assert(srl::event_batch_writer<controlled_writer&>);

}  // namespace srl_test
