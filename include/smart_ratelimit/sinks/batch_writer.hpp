// smart_ratelimit/sinks/batch_writer.hpp
// The contract between the asynchronous batching sink and a durable event store:
// a writer takes a batch of events and reports, row by row in aggregate, what
// became of them. The SOCI event store is one; tests supply their own.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

#include <smart_ratelimit/event.hpp>

namespace smart_ratelimit {

/// What a writer did with one batch. Invariant: written + invalid + failed == batch size.
/// `invalid`: rows rejected on their own merit (poison rows), never retried.
/// `failed`: rows not written because the store failed (down, missing table);
/// the caller may retry them.
struct batch_result {
    std::size_t written = 0;
    std::size_t invalid = 0;
    std::size_t failed = 0;
};

/// event_batch_writer: a durable destination for events.
///
/// | expression                    | meaning                                            |
/// |-------------------------------|----------------------------------------------------|
/// | `w.write_batch(span<const event>)` | writes the batch, returns batch_result; must not throw |
///
/// A poison row must not take the rest of its batch down with it.
/// Thread safety: called from one writer thread at a time.
template <class W>
concept event_batch_writer = requires(W& w, std::span<const event> batch) {
    { w.write_batch(batch) } -> std::same_as<batch_result>;
};

}  // namespace smart_ratelimit
