// smart_ratelimit/sinks/null_sink.hpp
// null_sink: the default event sink, which drops every event (event logging off, as
// in the reference library). A limiter with it compiles the event path away.
#pragma once

#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit {

/// Discards events. Thread safety: stateless, safe from any thread.
struct null_sink {
    /// True for sinks that drop everything; the limiter then skips building events.
    static constexpr bool discards_events = true;
    void record(const event&) noexcept {}
};

}  // namespace smart_ratelimit
