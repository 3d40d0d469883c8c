// smart_ratelimit/soci/detail/writer_failure.hpp
// How the event writers report: `store_failure` is thrown when the store (not a
// row) failed, any other exception means the row was rejected; note_error keeps
// the database's message for event_store::last_error().
#pragma once

#include <string>
#include <string_view>

namespace smart_ratelimit::soci::detail {

/// Thrown inside a writer when the store (connection, table) failed, not the row.
/// `broken`: the connection is in an unknown state (a wait timed out mid-command)
/// and must be dropped.
struct store_failure {
    bool broken = false;
};

/// Records `what` as the last error; never throws (an allocation failure loses it).
inline void note_error(std::string& last_error, std::string_view what) noexcept {
    try {
        last_error.assign(what);
    } catch (...) {}
}

}  // namespace smart_ratelimit::soci::detail
