// tests/support/killed_cleanup.hpp
// The state a PostgreSQL cleanup leaves when it is killed between its two steps, made
// by hand for the tests that check the next cleanup finishes it.
#pragma once

#include <smart_ratelimit/soci/detail/partitions.hpp>

#include <soci/soci.h>

#include <cstdint>

namespace srl_test {

/// Leaves day `day`'s partition detached from ratelimit_event and renamed, its rollups
/// not yet corrected.
inline void detach_as_killed_cleanup(::soci::session& sql, std::int64_t day) {
    namespace sd = smart_ratelimit::soci::detail;
    sql << "ALTER TABLE ratelimit_event DETACH PARTITION \"" + sd::partition_name(day) + "\"";
    sql << "ALTER TABLE \"" + sd::partition_name(day) + "\" RENAME TO \"" +
               sd::detached_partition_name(day) + "\"";
}

}  // namespace srl_test
