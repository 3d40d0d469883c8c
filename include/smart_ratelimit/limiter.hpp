// smart_ratelimit/limiter.hpp
// limiter<KeyExtractor, Storage, Sink, Clock>: applies a fixed list of rules to
// requests. check() decides without logging (a limiter used from handler code writes
// no events, SPEC 5); check_and_record() also writes one event per rule decision
// to the sink, and is what the HTTP middleware calls.
#pragma once

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/clock.hpp>
#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/event.hpp>
#include <smart_ratelimit/rule.hpp>
#include <smart_ratelimit/sinks/null_sink.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit {

/// Limiter-wide settings.
struct limiter_options {
    /// The inner key used when the key extractor yields "" (never "unlimited"). All
    /// such requests share it, so they are limited together. check_and_record() can
    /// override it per request (the HTTP middleware passes the client's IP key).
    std::string fallback_key = "anonymous";
    /// Puts every rule in shadow mode: decide and log, never block.
    bool shadow = false;
};

/// What the HTTP layer knows about a request, for its events.
struct request_info {
    std::string_view path;    ///< without the query string
    std::string_view method;
    std::optional<std::string_view> ip_address;  ///< the socket peer, if known
    std::optional<std::string_view> user_id;     ///< the authenticated user, if any
    std::string_view fallback_key;  ///< overrides limiter_options::fallback_key when not empty
};

/// Applies rules to requests.
///
/// Each rule keys its state as "rule:<name>:<inner key>" (the unnamed rule: the inner
/// key itself); keys over max_key_size bytes are shortened with a digest. With several
/// rules, every rule is evaluated and quota is consumed only when all of them pass
/// (peek all, then acquire all, rolling back if a concurrent request got in between).
/// Shadow rules decide and log but never block; a cost > 1 weighs a request more.
/// A throwing sink never changes a decision: the limiter catches and counts.
/// Thread safety: check, check_at and check_and_record may be called concurrently
/// from any number of threads (given a thread-safe storage and sink); the rules are
/// fixed at construction.
template <class KeyExtractor, storage_backend Storage = in_memory_storage<>,
          event_sink Sink = null_sink, clock Clock = steady_clock>
class limiter {
public:
    using key_extractor_type = KeyExtractor;
    using storage_type = Storage;
    using sink_type = Sink;
    using clock_type = Clock;
    using algorithm_type = typename Storage::algorithm_type;
    using rule_type = basic_rule<algorithm_type>;

    /// Builds the rules from configuration; throws config_error naming the bad rule,
    /// rate, algorithm or name, and for 0 or more than verdict::max_rules rules, or
    /// duplicate names.
    limiter(KeyExtractor key_extractor, const std::vector<rule_config>& rules,
            limiter_options options = {}, Storage storage = Storage{}, Sink sink = Sink{},
            Clock clock = Clock{})
        : limiter(std::move(key_extractor), make_rules(rules), std::move(options),
                  std::move(storage), std::move(sink), std::move(clock)) {}

    /// As above, with rules already built (e.g. a specific algorithm object).
    limiter(KeyExtractor key_extractor, std::vector<rule_type> rules, limiter_options options,
            Storage storage = Storage{}, Sink sink = Sink{}, Clock clock = Clock{})
        : key_extractor_(std::move(key_extractor)),
          storage_(std::move(storage)),
          sink_(std::move(sink)),
          clock_(std::move(clock)),
          rules_(std::move(rules)),
          options_(std::move(options)) {
        validate();
        cache_limits();
    }

    limiter(const limiter&) = delete;
    limiter& operator=(const limiter&) = delete;

    /// Decides on `req` at the clock's current time. Writes no event.
    template <class Request>
        requires key_extractor_for<KeyExtractor, Request>
    verdict check(const Request& req, std::uint64_t cost = 1) {
        auto&& key = key_extractor_(req);
        return decide<false>(std::string_view(key), clock_.now(), cost, nullptr);
    }

    /// Decides on `req` at time `now` (no clock read). Writes no event.
    template <class Request>
        requires key_extractor_for<KeyExtractor, Request>
    verdict check_at(const Request& req, std::chrono::nanoseconds now, std::uint64_t cost = 1) {
        auto&& key = key_extractor_(req);
        return decide<false>(std::string_view(key), now, cost, nullptr);
    }

    /// Decides on an already extracted inner key (e.g. "user:42"). Writes no event.
    verdict check_key(std::string_view inner_key, std::uint64_t cost = 1) {
        return decide<false>(inner_key, clock_.now(), cost, nullptr);
    }

    /// Decides on `req` and writes one event per rule decision to the sink (stamped
    /// with clock().wall_now()). Used by the HTTP middleware.
    template <class Request>
        requires key_extractor_for<KeyExtractor, Request>
    verdict check_and_record(const Request& req, const request_info& info,
                             std::uint64_t cost = 1) {
        auto&& key = key_extractor_(req);
        return decide<true>(std::string_view(key), clock_.now(), cost, &info);
    }

    /// check_and_record on an already extracted inner key ("" = the fallback key).
    verdict check_key_and_record(std::string_view inner_key, const request_info& info,
                                 std::uint64_t cost = 1) {
        return decide<true>(inner_key, clock_.now(), cost, &info);
    }

    const KeyExtractor& key_extractor() const noexcept { return key_extractor_; }
    Storage& storage() noexcept { return storage_; }
    const Storage& storage() const noexcept { return storage_; }
    Sink& sink() noexcept { return sink_; }
    const Sink& sink() const noexcept { return sink_; }
    const Clock& clock() const noexcept { return clock_; }
    const std::vector<rule_type>& rules() const noexcept { return rules_; }
    const limiter_options& options() const noexcept { return options_; }

    /// Number of times the sink threw (the decisions were unaffected).
    std::uint64_t sink_failures() const noexcept {
        return sink_failures_.load(std::memory_order_relaxed);
    }

private:
    static std::vector<rule_type> make_rules(const std::vector<rule_config>& configs) {
        std::vector<rule_type> out;
        out.reserve(configs.size());
        for (const auto& c : configs) out.push_back(make_rule<algorithm_type>(c));
        return out;
    }

    void validate() const {
        if (rules_.empty()) throw config_error("a limiter needs at least one rule");
        if (rules_.size() > verdict::max_rules)
            throw config_error("a limiter has at most " + std::to_string(verdict::max_rules) +
                               " rules, got " + std::to_string(rules_.size()));
        for (std::size_t i = 0; i < rules_.size(); ++i) {
            check_rule_name(rules_[i].name);
            for (std::size_t j = 0; j < i; ++j)
                if (rules_[i].name == rules_[j].name)
                    throw config_error(rules_[i].name.empty()
                                           ? std::string("a limiter has at most one unnamed rule")
                                           : "duplicate rule name \"" + rules_[i].name + "\"");
        }
        if (options_.fallback_key.empty())
            throw config_error("limiter_options::fallback_key must not be empty");
    }

    void cache_limits() noexcept {
        for (std::size_t i = 0; i < rules_.size(); ++i) limits_[i] = rules_[i].algorithm.limit();
    }

    void fill(decision& d, const rule_type& r, const outcome& o) const noexcept {
        d.allowed = o.allowed;
        d.shadow = r.shadow || options_.shadow;
        d.retryable = o.retryable;
        d.limit = limits_[static_cast<std::size_t>(&r - rules_.data())];
        d.remaining = o.remaining;
        d.count = o.count;
        d.reset_after = o.reset_after;
        d.retry_after = o.retry_after;
        d.rule = r.name;
    }

    template <bool Record>
    verdict decide(std::string_view inner, std::chrono::nanoseconds now, std::uint64_t cost,
                   const request_info* info) {
        if (inner.empty())
            inner = (info != nullptr && !info->fallback_key.empty()) ? info->fallback_key
                                                                      : std::string_view(options_.fallback_key);
        verdict v;
        if (rules_.size() == 1) {
            const rule_type& r = rules_.front();
            decision& d = v.emplace_back();
            format_key(d.key, r.name, inner);
            fill(d, r, storage_.acquire(d.key.view(), r.algorithm, now, cost));
        } else {
            decide_all(v, inner, now, cost);
        }
        if constexpr (Record) record(v, *info);
        return v;
    }

    // Several rules: peek every rule; if none blocks, acquire each; if an acquire fails
    // on a blocking rule (a concurrent request won the race), refund the acquired ones.
    void decide_all(verdict& v, std::string_view inner, std::chrono::nanoseconds now,
                    std::uint64_t cost) {
        bool blocked = false;
        for (const rule_type& r : rules_) {
            decision& d = v.emplace_back();
            format_key(d.key, r.name, inner);
            fill(d, r, storage_.peek(d.key.view(), r.algorithm, now, cost));
            blocked = blocked || d.blocked();
        }
        if (blocked) return;
        bool acquired[verdict::max_rules] = {};
        auto ds = v.decisions();
        for (std::size_t i = 0; i < rules_.size(); ++i) {
            if (!ds[i].allowed) continue;  // a shadow rule that denies consumes nothing
            fill(ds[i], rules_[i], storage_.acquire(ds[i].key.view(), rules_[i].algorithm, now, cost));
            acquired[i] = ds[i].allowed;
            if (ds[i].blocked()) {
                for (std::size_t j = 0; j < i; ++j)
                    if (acquired[j]) storage_.release(ds[j].key.view(), rules_[j].algorithm, now, cost);
                return;
            }
        }
    }

    void record(const verdict& v, const request_info& info) noexcept {
        if constexpr (requires { Sink::discards_events; }) {
            if constexpr (Sink::discards_events) return;
        }
        event_time ts{};
        try {
            ts = clock_.wall_now();
        } catch (...) {
        }
        for (const decision& d : v.decisions()) {
            try {
                sink_.record(make_event(ts, d.key.view(), info.path, info.method, d.allowed,
                                        static_cast<std::int64_t>(d.count),
                                        static_cast<std::int64_t>(d.limit), info.ip_address,
                                        info.user_id));
            } catch (...) {
                sink_failures_.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }

    [[no_unique_address]] KeyExtractor key_extractor_;
    Storage storage_;
    [[no_unique_address]] Sink sink_;
    [[no_unique_address]] Clock clock_;
    std::vector<rule_type> rules_;
    limiter_options options_;
    std::uint64_t limits_[verdict::max_rules] = {};  // rules_[i].algorithm.limit(), cached
    std::atomic<std::uint64_t> sink_failures_{0};
};

/// A thread-safe in-memory limiter with run-time algorithm choice.
template <class KeyExtractor, event_sink Sink = null_sink, clock Clock = steady_clock>
using in_memory_limiter = limiter<KeyExtractor, in_memory_storage<>, Sink, Clock>;

/// An in-memory limiter reading the coarse monotonic clock (cheaper; ms resolution).
template <class KeyExtractor, event_sink Sink = null_sink>
using coarse_in_memory_limiter =
    limiter<KeyExtractor, in_memory_storage<>, Sink, coarse_steady_clock>;

/// An in-memory limiter driven by a manual clock, for tests and simulations.
template <class KeyExtractor, event_sink Sink = null_sink>
using manual_in_memory_limiter = limiter<KeyExtractor, in_memory_storage<>, Sink, manual_clock>;

}  // namespace smart_ratelimit
