// smart_ratelimit/soci/detail/batch_triggers.hpp
// Which SQLite triggers can be switched off for a hooked batch of the event
// writer: reads each trigger's CREATE TRIGGER header with the shared SQL lexer
// and accepts only the ones that leave the batch's rows alone.
#pragma once

#include <string>
#include <string_view>

#include <smart_ratelimit/soci/detail/sql_lexer.hpp>

namespace smart_ratelimit::soci::detail {

// Reads `[schema.]name` after its first token `t`; returns the token after it.
inline std::string skip_qualified_name(sql_tokens& in, std::string t) {
    if (t.empty()) return {};
    t = in.next();
    if (t == ".") {
        if (in.next().empty()) return {};
        t = in.next();
    }
    return t;
}

// The event a CREATE TRIGGER statement names (DELETE, INSERT or UPDATE, upper
// case), read from its header: CREATE [TEMP|TEMPORARY] TRIGGER [IF NOT EXISTS]
// [schema.]name [BEFORE|AFTER|INSTEAD OF] event ... "" when the text does not have
// that shape. `in` is left after the event.
inline std::string trigger_event(sql_tokens& in) {
    if (in.next() != "CREATE") return {};
    std::string t = in.next();
    if (t == "TEMP" || t == "TEMPORARY") t = in.next();
    if (t != "TRIGGER") return {};
    t = in.next();
    if (t == "IF") {
        if (in.next() != "NOT" || in.next() != "EXISTS") return {};
        t = in.next();
    }
    t = skip_qualified_name(in, t);
    if (t == "BEFORE" || t == "AFTER")
        t = in.next();
    else if (t == "INSTEAD") {
        if (in.next() != "OF") return {};
        t = in.next();
    }
    return t == "DELETE" || t == "INSERT" || t == "UPDATE" ? t : std::string();
}

/// Whether a trigger (its table and CREATE TRIGGER text, as sqlite_master holds
/// them) does nothing for the rows of the event writer's hooked batches: an INSERT
/// trigger on ratelimit_event whose whole WHEN clause is `NOT EXISTS (SELECT 1 FROM
/// ratelimit_event_batch)` (the analytics rollup trigger's), or a trigger on
/// ratelimit_event for another event (the writer only inserts there). Anything
/// else, a trigger on another table or a text this cannot read, may matter: false.
inline bool trigger_skips_batches(std::string_view table, std::string_view sql) {
    if (table != "ratelimit_event") return false;
    sql_tokens in(sql);
    const std::string event = trigger_event(in);
    if (event == "DELETE" || event == "UPDATE") return true;
    if (event != "INSERT" || in.next() != "ON") return false;
    std::string t = skip_qualified_name(in, in.next());
    if (t == "FOR") {
        if (in.next() != "EACH" || in.next() != "ROW") return false;
        t = in.next();
    }
    if (t != "WHEN") return false;
    // The condition, token by token, then BEGIN: nothing else may decide.
    for (const char* expected :
         {"NOT", "EXISTS", "(", "SELECT", "1", "FROM", "RATELIMIT_EVENT_BATCH", ")", "BEGIN"})
        if (in.next() != expected) return false;
    return true;
}

}  // namespace smart_ratelimit::soci::detail
