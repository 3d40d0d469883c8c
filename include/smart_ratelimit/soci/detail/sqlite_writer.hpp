// smart_ratelimit/soci/detail/sqlite_writer.hpp
// The event store's SQLite writer: one transaction per batch through one
// prepared INSERT on the session's sqlite3 handle (with the outcome column from
// events v3 on), then the batch hooks other components registered (events v2),
// with triggers that skip hooked batches off.
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <soci/sqlite3/soci-sqlite3.h>

#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/soci/detail/batch_triggers.hpp>
#include <smart_ratelimit/soci/detail/writer_failure.hpp>

namespace smart_ratelimit::soci::detail {

/// The prepared statements of one writer connection (finalized with it) and how
/// it writes a batch. Errors: store_failure when the store failed, another
/// exception when the batch holds a rejected row; `last_error` gets the message.
class sqlite_writer {
public:
    sqlite_writer() = default;
    sqlite_writer(const sqlite_writer&) = delete;
    sqlite_writer& operator=(const sqlite_writer&) = delete;
    ~sqlite_writer() {
        if (insert_ != nullptr) sqlite_api::sqlite3_finalize(insert_);
        if (list_hooks_ != nullptr) sqlite_api::sqlite3_finalize(list_hooks_);
        if (list_triggers_ != nullptr) sqlite_api::sqlite3_finalize(list_triggers_);
        for (auto& h : hooks_) sqlite_api::sqlite3_finalize(h.stmt);
    }

    /// Writes `rows` in one transaction on `db` (see the file comment).
    void write(sqlite_api::sqlite3* db, std::span<const event* const> rows,
               std::string& last_error) {
        using namespace sqlite_api;
        // The INSERT with the outcome column (events v3); on an older database the one
        // without it, and the next batch tries the full one again (after a migrate).
        if (insert_ == nullptr || !with_outcome_) {
            static constexpr char insert_sql[] =
                "INSERT INTO ratelimit_event (timestamp, key, rule_name, path, method, allowed, "
                "count,"
                " \"limit\", ip_address, user_id, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?)";
            static constexpr char legacy_sql[] =
                "INSERT INTO ratelimit_event (timestamp, key, rule_name, path, method, allowed, "
                "count,"
                " \"limit\", ip_address, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
            sqlite3_stmt* full = nullptr;
            if (sqlite3_prepare_v2(db, insert_sql, sizeof insert_sql, &full, nullptr) ==
                SQLITE_OK) {
                if (insert_ != nullptr) sqlite3_finalize(insert_);
                insert_ = full;
                with_outcome_ = true;
            } else if (insert_ == nullptr) {
                if (sqlite3_prepare_v2(db, legacy_sql, sizeof legacy_sql, &insert_, nullptr) !=
                    SQLITE_OK) {
                    note_error(last_error, sqlite3_errmsg(db));
                    insert_ = nullptr;
                    throw store_failure{};
                }
                with_outcome_ = false;
            }
        }
        sqlite3_stmt* st = insert_;
        auto text = [st](int i, const std::string& s) {
            return sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
        };
        if (sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
            note_error(last_error, sqlite3_errmsg(db));
            throw store_failure{};
        }
        // A hook that cannot run costs speed, never rows: the batch is rolled back and
        // written again without the marker, so the per-row triggers do the work, and
        // this connection stops using hooks (the next connection tries again).
        auto hook_failed = [&](bool noted = false) {
            if (!noted) note_error(last_error, std::string("batch hook: ") + sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            hooks_disabled_ = true;
            write(db, rows, last_error);
        };
        bool hooks = false;
        if (!hooks_disabled_) {
            try {
                hooks = load_batch_hooks(db, last_error);
            } catch (const store_failure&) {
                return hook_failed(true);
            }
        }
        // With hooks, and every trigger one that skips the batch's rows anyway, the
        // triggers are off for the batch: SQLite would otherwise still run each one's
        // program per row just to find its WHEN clause false (about 1 us per row for
        // the analytics trigger). Any other trigger keeps them all on.
        if (!set_triggers(db, !(hooks && triggers_skip_batches(db)))) {
            note_error(last_error, std::string("cannot switch triggers: ") + sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            throw store_failure{};
        }
        // The marker row makes the hooked per-row triggers skip these rows; it is
        // deleted before COMMIT, so no other connection ever sees it.
        if (hooks &&
            sqlite3_exec(db, "INSERT INTO ratelimit_event_batch (first_id, last_id) VALUES (0, -1)",
                         nullptr, nullptr, nullptr) != SQLITE_OK)
            return hook_failed();
        sqlite3_int64 first_id = 0;
        bool first = true;
        for (const event* e : rows) {
            sqlite3_bind_int64(st, 1, e->timestamp.time_since_epoch().count());
            text(2, e->key);
            text(3, e->rule_name);
            text(4, e->path);
            text(5, e->method);
            sqlite3_bind_int(st, 6, e->allowed ? 1 : 0);
            sqlite3_bind_int64(st, 7, e->count);
            sqlite3_bind_int64(st, 8, e->limit);
            if (e->ip_address)
                text(9, *e->ip_address);
            else
                sqlite3_bind_null(st, 9);
            if (e->user_id)
                text(10, *e->user_id);
            else
                sqlite3_bind_null(st, 10);
            if (with_outcome_) {
                const std::string_view o = to_string(e->outcome);
                sqlite3_bind_text(st, 11, o.data(), static_cast<int>(o.size()), SQLITE_STATIC);
            }
            const int rc = sqlite3_step(st);
            if (rc != SQLITE_DONE) {
                note_error(last_error, sqlite3_errmsg(db));
                sqlite3_reset(st);
                sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
                const int primary = rc & 0xff;
                // Only a constraint, a type mismatch or an oversized value is the row's fault.
                if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH ||
                    primary == SQLITE_TOOBIG)
                    throw std::runtime_error("row rejected");
                throw store_failure{};
            }
            sqlite3_reset(st);
            if (first) first_id = sqlite3_last_insert_rowid(db);
            first = false;
        }
        if (hooks) {
            const std::string range =
                "UPDATE ratelimit_event_batch SET first_id = " + std::to_string(first_id) +
                ", last_id = " + std::to_string(sqlite3_last_insert_rowid(db));
            if (sqlite3_exec(db, range.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
                return hook_failed();
            for (auto& h : hooks_) {
                const int rc = sqlite3_step(h.stmt);
                if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                    note_error(last_error, std::string("batch hook: ") + sqlite3_errmsg(db));
                    sqlite3_reset(h.stmt);
                    return hook_failed(true);
                }
                sqlite3_reset(h.stmt);
            }
            if (sqlite3_exec(db, "DELETE FROM ratelimit_event_batch", nullptr, nullptr, nullptr) !=
                SQLITE_OK)
                return hook_failed();
        }
        if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
            note_error(last_error, sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            throw store_failure{};
        }
    }

private:
    // One registered batch hook, prepared on this connection.
    struct batch_hook {
        std::string text;
        sqlite_api::sqlite3_stmt* stmt = nullptr;
    };

    // Reads the registered batch hooks (inside the batch's transaction) and prepares
    // the ones whose text changed; false when there are none.
    bool load_batch_hooks(sqlite_api::sqlite3* db, std::string& last_error) {
        using namespace sqlite_api;
        if (!hook_table_checked_) {
            // Missing table (a database at events v1): no hooks, every trigger fires.
            static constexpr char list_sql[] =
                "SELECT statement FROM ratelimit_event_batch_hook ORDER BY component, step";
            if (sqlite3_prepare_v2(db, list_sql, sizeof list_sql, &list_hooks_, nullptr) !=
                SQLITE_OK)
                list_hooks_ = nullptr;
            hook_table_checked_ = true;
        }
        if (list_hooks_ == nullptr) {
            // Checked again on a later connection (after `migrate`, the writer reconnects
            // only on failure): a batch with triggers firing is correct, only slower.
            return false;
        }
        // Re-read every batch (a migration may change the hooks while the writer runs).
        std::size_t n = 0;
        int rc;
        while ((rc = sqlite3_step(list_hooks_)) == SQLITE_ROW) {
            const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(list_hooks_, 0));
            const std::string_view sv(
                text != nullptr ? text : "",
                static_cast<std::size_t>(sqlite3_column_bytes(list_hooks_, 0)));
            if (n == hooks_.size()) hooks_.emplace_back();
            batch_hook& h = hooks_[n++];
            if (h.stmt == nullptr || h.text != sv) {
                if (h.stmt != nullptr) sqlite3_finalize(h.stmt);
                h.stmt = nullptr;
                h.text.assign(sv);
                if (sqlite3_prepare_v2(db, h.text.c_str(), static_cast<int>(h.text.size()) + 1,
                                       &h.stmt, nullptr) != SQLITE_OK) {
                    h.stmt = nullptr;
                    note_error(last_error, std::string("batch hook: ") + sqlite3_errmsg(db));
                    sqlite3_reset(list_hooks_);
                    throw store_failure{};
                }
            }
        }
        if (rc != SQLITE_DONE) {
            note_error(last_error, std::string("batch hook: ") + sqlite3_errmsg(db));
            sqlite3_reset(list_hooks_);
            throw store_failure{};
        }
        sqlite3_reset(list_hooks_);
        while (hooks_.size() > n) {
            sqlite3_finalize(hooks_.back().stmt);
            hooks_.pop_back();
        }
        return n != 0;
    }

    // Whether every trigger in the database leaves a hooked batch's rows alone (see
    // trigger_skips_batches); false when that cannot be read.
    bool triggers_skip_batches(sqlite_api::sqlite3* db) noexcept {
        using namespace sqlite_api;
        if (list_triggers_ == nullptr) {
            static constexpr char sql[] =
                "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'";
            if (sqlite3_prepare_v2(db, sql, sizeof sql, &list_triggers_, nullptr) != SQLITE_OK) {
                list_triggers_ = nullptr;
                return false;
            }
        }
        bool skip = true;
        int rc;
        while ((rc = sqlite3_step(list_triggers_)) == SQLITE_ROW) {
            const auto column = [&](int i) {
                const auto* t =
                    reinterpret_cast<const char*>(sqlite3_column_text(list_triggers_, i));
                return std::string_view(
                    t != nullptr ? t : "",
                    static_cast<std::size_t>(sqlite3_column_bytes(list_triggers_, i)));
            };
            try {
                skip = skip && trigger_skips_batches(column(0), column(1));
            } catch (...) {
                skip = false;
            }
        }
        sqlite3_reset(list_triggers_);
        return skip && rc == SQLITE_DONE;
    }

    // Turns this connection's triggers on or off (no-op when already so).
    bool set_triggers(sqlite_api::sqlite3* db, bool on) noexcept {
        if (triggers_on_ == on) return true;
        int now = -1;
        if (sqlite_api::sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, on ? 1 : 0, &now) !=
                SQLITE_OK ||
            now != (on ? 1 : 0))
            return false;
        triggers_on_ = on;
        return true;
    }

    sqlite_api::sqlite3_stmt* insert_ = nullptr;
    bool with_outcome_ = false;                       // insert_ writes the outcome column
    sqlite_api::sqlite3_stmt* list_hooks_ = nullptr;  // null: no hook table (events v1)
    sqlite_api::sqlite3_stmt* list_triggers_ = nullptr;
    bool hook_table_checked_ = false;
    bool hooks_disabled_ = false;
    bool triggers_on_ = true;  // SQLITE_DBCONFIG_ENABLE_TRIGGER of this connection
    std::vector<batch_hook> hooks_;
};

}  // namespace smart_ratelimit::soci::detail
