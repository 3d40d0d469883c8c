// tools/migration_sets.hpp
// The migration sets the smart-ratelimit program knows: the event log's, then
// every other component's. `migrate` applies them and `health` checks that each
// is current, so both read this one list.
#pragma once

#include <smart_ratelimit/soci/alert_log.hpp>
#include <smart_ratelimit/soci/analytics.hpp>
#include <smart_ratelimit/soci/schema.hpp>
#include <smart_ratelimit/soci/state_storage.hpp>

#include <vector>

namespace srl_tool {

/// Every migration set besides the event log's (which the event store applies
/// first). A component with its own tables adds one line here.
inline std::vector<smart_ratelimit::soci::migration_set> component_migration_sets() {
    namespace sq = smart_ratelimit::soci;
    return {sq::analytics_migrations, sq::alert_log_migrations, sq::state_migrations};
}

/// Every migration set, the event log's first.
inline std::vector<smart_ratelimit::soci::migration_set> all_migration_sets() {
    auto sets = component_migration_sets();
    sets.insert(sets.begin(), smart_ratelimit::soci::event_log_migrations);
    return sets;
}

}  // namespace srl_tool
