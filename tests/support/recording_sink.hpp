// tests/support/recording_sink.hpp
// recording_sink: an event sink for tests that keeps every event it receives, and
// throwing_sink, which fails on every call (to prove a broken sink changes nothing).
#pragma once

#include <smart_ratelimit/event.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace srl_test {

/// Keeps a copy of every event. Copies share the same list, so a test keeps one copy
/// and hands another to a limiter.
/// Thread safety: record and events may be called concurrently.
class recording_sink {
public:
    recording_sink() : state_(std::make_shared<state>()) {}

    void record(const smart_ratelimit::event& e) {
        std::lock_guard<std::mutex> lock(state_->mutex);
        state_->events.push_back(e);
    }

    std::vector<smart_ratelimit::event> events() const {
        std::lock_guard<std::mutex> lock(state_->mutex);
        return state_->events;
    }

    std::size_t size() const {
        std::lock_guard<std::mutex> lock(state_->mutex);
        return state_->events.size();
    }

private:
    struct state {
        std::mutex mutex;
        std::vector<smart_ratelimit::event> events;
    };
    std::shared_ptr<state> state_;
};

/// A sink whose record() always throws.
struct throwing_sink {
    void record(const smart_ratelimit::event&) { throw std::runtime_error("sink is broken"); }
};

}  // namespace srl_test
