// smart_ratelimit/soci.hpp
// The SOCI adapter (target smart_ratelimit::soci): database URLs, versioned schema
// migrations, the durable event store for SQLite and PostgreSQL and the analytics
// computed in SQL over it. Not part of the core umbrella; it needs SOCI with its
// sqlite3 and postgresql backends.
#pragma once

#include <smart_ratelimit/soci/database_url.hpp>
#include <smart_ratelimit/soci/event_store.hpp>
#include <smart_ratelimit/soci/schema.hpp>
#include <smart_ratelimit/soci/analytics.hpp>
