// smart_ratelimit/sinks/sink_stats.hpp
// The reasons an event can be dropped and the counters of the asynchronous
// sink: a plain snapshot value, taken from atomics at any time, with the
// accounting identity written + dropped + in_flight == offered.
#pragma once

#include <cstdint>
#include <string_view>

namespace smart_ratelimit {

/// Why an offered event was not written.
enum class drop_reason {
    queue_full,   ///< the bounded queue was full (or closed after stop())
    write_error,  ///< the store kept failing past the retry budget or shutdown deadline
    invalid_row,  ///< the store rejected the row on its own merit (a poison row)
};

/// The name used in logs and metrics: "queue_full", "write_error", "invalid_row".
constexpr std::string_view to_string(drop_reason r) noexcept {
    switch (r) {
        case drop_reason::queue_full:
            return "queue_full";
        case drop_reason::write_error:
            return "write_error";
        case drop_reason::invalid_row:
            return "invalid_row";
    }
    return "unknown";
}

/// A snapshot of an async_sink's counters.
/// `batches` counts batches handed to the writer (first attempts); `retries` counts
/// the further write_batch calls made for rows that failed.
struct async_sink_stats {
    std::uint64_t offered = 0;
    std::uint64_t written = 0;
    std::uint64_t dropped_queue_full = 0;
    std::uint64_t dropped_write_error = 0;
    std::uint64_t dropped_invalid_row = 0;
    std::uint64_t batches = 0;
    std::uint64_t retries = 0;

    /// Dropped for any reason.
    constexpr std::uint64_t dropped() const noexcept {
        return dropped_queue_full + dropped_write_error + dropped_invalid_row;
    }
    /// Dropped for one reason.
    constexpr std::uint64_t dropped(drop_reason r) const noexcept {
        switch (r) {
            case drop_reason::queue_full:
                return dropped_queue_full;
            case drop_reason::write_error:
                return dropped_write_error;
            case drop_reason::invalid_row:
                return dropped_invalid_row;
        }
        return 0;
    }
    /// Offered but neither written nor dropped yet: queued or being written.
    /// Zero after flush() or stop() returns, when no producer is still recording.
    constexpr std::uint64_t in_flight() const noexcept {
        const std::uint64_t done = written + dropped();
        return offered > done ? offered - done : 0;
    }

    friend bool operator==(const async_sink_stats&, const async_sink_stats&) = default;
};

}  // namespace smart_ratelimit
