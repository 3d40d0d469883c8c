// smart_ratelimit/metrics/decision_metrics.hpp
// `decision_metrics`: the limiter observer that counts every rule decision as
// smart_ratelimit_decisions_total{rule,outcome} and times a sample of requests into
// the smart_ratelimit_decision_duration_seconds histogram. Per-thread cells, rules
// found by their name's address (no string hashing per decision); a cheap handle
// shared by any number of limiters and the scrape endpoint.
#pragma once

#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/metrics/detail/per_thread.hpp>
#include <smart_ratelimit/metrics/exposition.hpp>
#include <smart_ratelimit/metrics/histogram.hpp>
#include <smart_ratelimit/observer.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace smart_ratelimit::metrics {

/// Settings of decision_metrics.
struct decision_metrics_options {
    /// Time one rule decision in this many, per thread (1 = every one). Timing costs one
    /// extra clock read (about 20 ns on a VM; the start is the limiter's own read) and
    /// a histogram update: at 1 it would add a third to a hot-key in-memory decision
    /// (about 60 ns). The default amortizes that to under 0.1 ns, so the whole observer
    /// costs about 1.5 ns, within 5% of that decision (bench_metrics,
    /// scripts/bench-metrics.sh). With N > 1 the histogram is a sample: its _count is
    /// about 1/N of the rule decisions (smart_ratelimit_decisions_total counts them
    /// all). Storages that make a round trip (Redis, SQL) should use 1: there the clock
    /// read is noise.
    std::uint32_t time_every = 256;
    /// Upper bounds (seconds) of the duration histogram.
    std::vector<double> duration_buckets = latency_buckets();
};

/// Anything with rules that have names (a limiter).
template <class L>
concept has_rules = requires(const L& l) {
    l.rules().front().name;
};

/// The observer (observer.hpp) that turns decisions into Prometheus metrics:
///
/// - `smart_ratelimit_decisions_total{rule,outcome}`: every decision; `rule` is the
///   rule name ("" for the unnamed rule), `outcome` one of allowed, blocked,
///   shadow_blocked, degraded. Each known rule reports all four outcomes.
/// - `smart_ratelimit_decision_duration_seconds`: the time the limiter took to decide
///   a request, observed for one rule decision in `time_every` per thread (read from
///   the limiter's decision_timer; decisions at a caller's time are not timed).
///
/// | expression               | type            | meaning                                   |
/// |--------------------------|-----------------|-------------------------------------------|
/// | `m.bind(name)`           | `rule_slot`     | the rule's series (created if new); a limiter binds its rules when built |
/// | `m.on_decision(r, d, timer)` | `void`      | what a limiter calls: counts d under (rule r, d.kind()); one call in `time_every` per thread observes timer.elapsed() |
/// | `m.on_outcome(r, k, timer)` | `void`       | the same for an outcome alone (what a one-rule limiter's allow() calls) |
/// | `m.on_decision(r, d, t)` | `void`          | counts d under (rule r, d.kind()); observes t unless not_timed |
/// | `m.on_decision(d, t)`    | `void`          | the same, the rule found by d.rule's name   |
/// | `m.time_next()`          | `bool`          | true once every `time_every` calls on this thread (for observers that wrap this one and time with `t`) |
/// | `m.add_rule(name)`       | `void`          | makes a rule's series exist before its first decision |
/// | `m.add_rules(lim)`       | `void`          | add_rule for each of a limiter's rules     |
/// | `m.count(rule, kind)`    | `std::uint64_t` | decisions counted so far (sums every thread) |
/// | `m.duration()`           | `histogram`     | the duration histogram (a shared handle)   |
/// | `m.collect(out)`         | `void`          | both families, rules in name order (a collector) |
///
/// A handle: copies (one per limiter) share the counts. A limiter binds each of its
/// rules once, so its series exist from the start and a decision goes straight to its
/// rule's cell. Unbound, a rule is found by its name's address and length in a
/// per-thread table, checked against the name's text (so a string destroyed and
/// another built at the same address stay correct); a new name takes a lock once. Up
/// to max_rules distinct names; a further one makes bind throw config_error (the
/// limiter's constructor passes it on) and the unbound on_decision throw (the limiter
/// catches and counts it).
/// Thread safety: every member may be called concurrently; a thread writes only its
/// own cells and a scrape sums them.
class decision_metrics {
public:
    static constexpr std::string_view decisions_name = "smart_ratelimit_decisions_total";
    static constexpr std::string_view duration_name = "smart_ratelimit_decision_duration_seconds";
    static constexpr std::size_t max_rules = 16384;

    explicit decision_metrics(decision_metrics_options o = {})
        : s_(std::make_shared<state>(std::move(o))), pool_(s_->pool.get()), pool_id_(pool_->id()) {}

    bool time_next() const {
        cells& c = pool_->local(pool_id_);
        if (c.countdown > 1) {
            --c.countdown;
            return false;
        }
        c.countdown = s_->every;
        return true;
    }

    /// A rule's series, resolved once (a limiter binds its rules when it is built).
    struct rule_slot {
        std::uint32_t index = 0;
        friend bool operator==(rule_slot, rule_slot) = default;
    };

    rule_slot bind(std::string_view rule) const { return {s_->find_or_add(rule)}; }

    void on_decision(rule_slot rule, const decision& d, std::chrono::nanoseconds elapsed) const {
        cells& c = pool_->local(pool_id_);
        detail::owner_add(c.counter(rule.index * kinds + static_cast<std::uint32_t>(d.kind())), 1);
        if (elapsed.count() >= 0) [[unlikely]]
            observe(elapsed);
    }

    /// The form a limiter calls: counts d and, once every time_every calls on this
    /// thread, reads the timer (the thread's cells are found once for both).
    void on_decision(rule_slot rule, const decision& d, const decision_timer& timer) const {
        on_outcome(rule, d.kind(), timer);
    }

    /// As above, for a decision told by its outcome alone (a one-rule limiter's allow()).
    void on_outcome(rule_slot rule, outcome_kind k, const decision_timer& timer) const {
        cells& c = pool_->local(pool_id_);
        detail::owner_add(c.counter(rule.index * kinds + static_cast<std::uint32_t>(k)), 1);
        if (c.countdown > 1) [[likely]] {
            --c.countdown;
            return;
        }
        c.countdown = s_->every;
        observe(timer);
    }

    void on_decision(const decision& d, std::chrono::nanoseconds elapsed) const {
        cells& c = pool_->local(pool_id_);
        const std::uint32_t slot = c.slot_of(d.rule, *s_);
        detail::owner_add(c.counter(slot * kinds + static_cast<std::uint32_t>(d.kind())), 1);
        if (elapsed.count() >= 0) [[unlikely]]
            observe(elapsed);
    }

    void add_rule(std::string_view name) const { s_->find_or_add(name); }

    template <has_rules Limiter>
    void add_rules(const Limiter& lim) const {
        for (const auto& r : lim.rules()) add_rule(r.name);
    }

    std::uint64_t count(std::string_view rule, outcome_kind k) const {
        std::uint32_t slot = 0;
        {
            std::lock_guard<std::mutex> lock(s_->m);
            const auto it = s_->slots.find(std::string(rule));
            if (it == s_->slots.end()) return 0;
            slot = it->second;
        }
        const std::uint32_t idx = slot * kinds + static_cast<std::uint32_t>(k);
        std::uint64_t sum = 0;
        s_->pool->for_each([&](const cells& c) {
            if (const chunk* ch = c.chunks[idx / chunk_cells].load(std::memory_order_acquire))
                sum += ch->v[idx % chunk_cells].load(std::memory_order_relaxed);
        });
        return sum;
    }

    histogram duration() const { return s_->duration; }
    std::uint32_t time_every() const noexcept { return s_->every; }

    void collect(exposition& out) const {
        std::vector<std::pair<std::string_view, std::uint32_t>> rules;
        {
            std::lock_guard<std::mutex> lock(s_->m);
            rules.reserve(s_->names.size());
            for (std::uint32_t i = 0; i < s_->names.size(); ++i)
                rules.emplace_back(*s_->names[i], i);
        }
        std::sort(rules.begin(), rules.end());
        const std::size_t cells_used = rules.size() * kinds;
        std::vector<std::uint64_t> totals(cells_used, 0);
        s_->pool->for_each([&](const cells& c) {
            for (std::size_t k = 0; k * chunk_cells < cells_used; ++k) {
                const chunk* ch = c.chunks[k].load(std::memory_order_acquire);
                if (ch == nullptr) continue;
                const std::size_t end = std::min(chunk_cells, cells_used - k * chunk_cells);
                for (std::size_t i = 0; i < end; ++i)
                    totals[k * chunk_cells + i] += ch->v[i].load(std::memory_order_relaxed);
            }
        });
        out.declare(decisions_name, metric_type::counter,
                    "Rate limit decisions, by rule (\"\" is the unnamed rule) and outcome.");
        for (const auto& [name, slot] : rules)
            for (std::uint32_t k = 0; k < kinds; ++k)
                out.sample(decisions_name,
                           {{"rule", name}, {"outcome", to_string(static_cast<outcome_kind>(k))}},
                           totals[slot * kinds + k]);
        s_->duration.collect(out);
    }

private:
    // Off the hot path: one decision in time_every is timed.
    [[gnu::noinline]] void observe(std::chrono::nanoseconds elapsed) const {
        s_->duration.observe(elapsed);
    }

    [[gnu::noinline]] void observe(const decision_timer& timer) const {
        const std::chrono::nanoseconds elapsed = timer.elapsed();
        if (elapsed.count() >= 0) s_->duration.observe(elapsed);
    }

    static constexpr std::uint32_t kinds = 4;  // outcome_kind: allowed .. degraded
    static constexpr std::size_t chunk_cells = 256;
    static constexpr std::size_t max_chunks = max_rules * kinds / chunk_cells;

    struct alignas(64) chunk {
        std::atomic<std::uint64_t> v[chunk_cells] = {};
    };
    struct cells;

    struct state {
        explicit state(decision_metrics_options o)
            : every(std::max<std::uint32_t>(o.time_every, 1)),
              duration(std::string(duration_name),
                       "Time taken to decide a request (a sample of one request in time_every per "
                       "thread; smart_ratelimit_decisions_total counts them all).",
                       std::move(o.duration_buckets)) {}

        // The slot of `name`, created on first sight; its stable copy in *text.
        std::uint32_t find_or_add(std::string_view name, const std::string** text = nullptr) {
            std::lock_guard<std::mutex> lock(m);
            auto it = slots.find(std::string(name));
            if (it == slots.end()) {
                if (names.size() >= max_rules)
                    throw config_error("decision_metrics: more than " + std::to_string(max_rules) +
                                       " rule names");
                names.reserve(names.size() + 1);
                it = slots.emplace(std::string(name), static_cast<std::uint32_t>(names.size()))
                         .first;
                names.push_back(&it->first);
            }
            if (text != nullptr) *text = &it->first;
            return it->second;
        }

        const std::uint32_t every;
        histogram duration;
        std::mutex m;
        std::unordered_map<std::string, std::uint32_t> slots;  // node keys: stable addresses
        std::vector<const std::string*> names;                 // by slot
        std::shared_ptr<detail::cell_pool<cells>> pool =
            std::make_shared<detail::cell_pool<cells>>();
    };

    // One thread's cells.
    struct cells {
        explicit cells(std::size_t) : table(16) { chunks[0].store(&first); }
        cells(const cells&) = delete;
        cells& operator=(const cells&) = delete;
        ~cells() {
            for (std::size_t k = 1; k < max_chunks; ++k)
                delete chunks[k].load(std::memory_order_relaxed);
        }

        std::atomic<std::uint64_t>& counter(std::size_t idx) {
            if (idx < chunk_cells) [[likely]]
                return first.v[idx];  // the first 64 rules: no pointer to follow
            chunk* ch = chunks[idx / chunk_cells].load(std::memory_order_relaxed);
            if (ch == nullptr) [[unlikely]]
                ch = add_chunk(idx / chunk_cells);
            return ch->v[idx % chunk_cells];
        }

        [[gnu::noinline]] chunk* add_chunk(std::size_t k) {
            chunk* ch = new chunk;
            chunks[k].store(ch, std::memory_order_release);
            return ch;
        }

        std::uint32_t slot_of(std::string_view rule, state& s) {
            if (rule.data() == last.ptr && rule.size() == last.size && same_text(last.text, rule))
                [[likely]]
                return last.slot;
            return slot_in_table(rule, s);
        }

        std::uint32_t slot_in_table(std::string_view rule, state& s) {
            const std::size_t mask = table.size() - 1;
            for (std::size_t i = hash(rule.data(), mask);; i = (i + 1) & mask) {
                const entry& e = table[i];
                if (e.ptr == rule.data() && e.size == rule.size()) {
                    if (same_text(e.text, rule)) [[likely]] {
                        last = e;
                        return e.slot;
                    }
                    break;  // the address now holds another name
                }
                if (e.ptr == nullptr) break;
            }
            return learn(rule, s);
        }

        // Owner-only: the rule table and the timing countdown.
        struct entry {
            const char* ptr = nullptr;
            std::size_t size = 0;
            const char* text = nullptr;
            std::uint32_t slot = 0;
        };
        entry last{nullptr, std::size_t(-1), nullptr,
                   0};  // the rule found last (a one-rule limiter looks no further)
        std::vector<entry> table;
        std::size_t used = 0;
        std::uint32_t countdown = 0;
        // Read by scrapes. chunks[0] is `first`; the others are allocated on first use.
        chunk first;
        std::atomic<chunk*> chunks[max_chunks] = {};

    private:
        // Rule names are short: an inline loop beats a call to memcmp.
        static bool same_text(const char* text, std::string_view rule) noexcept {
            for (std::size_t i = 0; i < rule.size(); ++i)
                if (text[i] != rule[i]) return false;
            return true;
        }

        static std::size_t hash(const char* p, std::size_t mask) noexcept {
            const auto x = reinterpret_cast<std::uintptr_t>(p) * 0x9E3779B97F4A7C15ull;
            return static_cast<std::size_t>(x >> 32) & mask;
        }

        [[gnu::noinline]] std::uint32_t learn(std::string_view rule, state& s) {
            const std::string* text = nullptr;
            const std::uint32_t slot = s.find_or_add(rule, &text);
            if (rule.data() == nullptr) return slot;  // a default string_view: not cached
            if ((used + 1) * 2 > table.size()) grow();
            put({rule.data(), rule.size(), text->data(), slot});
            last = {rule.data(), rule.size(), text->data(), slot};
            return slot;
        }

        void put(const entry& n) {
            const std::size_t mask = table.size() - 1;
            for (std::size_t i = hash(n.ptr, mask);; i = (i + 1) & mask) {
                entry& e = table[i];
                if (e.ptr == n.ptr && e.size == n.size) {
                    e = n;  // a stale entry for the same address: replace
                    return;
                }
                if (e.ptr == nullptr) {
                    e = n;
                    ++used;
                    return;
                }
            }
        }

        void grow() {
            std::vector<entry> old(table.size() * 2);
            old.swap(table);
            used = 0;
            for (const entry& e : old)
                if (e.ptr != nullptr) put(e);
        }
    };

    std::shared_ptr<state> s_;
    detail::cell_pool<cells>* pool_;
    std::uint64_t pool_id_;
};

}  // namespace smart_ratelimit::metrics
