// smart_ratelimit/decision.hpp
// The results of limiting. `outcome` is what an algorithm returns for one state;
// `decision` is one rule's answer for one request (with its rule and key); `verdict`
// gathers the decisions of all of a limiter's rules on one request. None allocates.
#pragma once

#include <smart_ratelimit/event.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <span>
#include <string_view>
#include <type_traits>

namespace smart_ratelimit {

/// The longest storage key the limiter produces (the event log's key column).
/// Longer keys are shortened with a digest (see rule.hpp), never skipped.
inline constexpr std::size_t max_key_size = event_caps::key;

/// retry_after of a request that can never pass (its cost exceeds the capacity).
inline constexpr std::chrono::nanoseconds never = std::chrono::nanoseconds::max();

/// What an algorithm decided for one state. `count` is the number of units counted
/// in the current window after the decision (the request included when allowed);
/// `remaining` is limit - count, never negative. `reset_after` is the time until the
/// state is back to fresh (full quota); `retry_after` is 0 when allowed, the wait
/// until the same request could pass otherwise, or `never` when !retryable.
/// `degraded` marks the answer of a store that could not decide (storage failure):
/// then nothing was counted, `allowed` is false and `retry_after` says when asking
/// again is worthwhile; the limiter's failure_policy decides what the request gets.
struct outcome {
    bool allowed = false;
    bool retryable = true;
    bool degraded = false;
    std::uint64_t count = 0;
    std::uint64_t remaining = 0;
    std::chrono::nanoseconds reset_after{0};
    std::chrono::nanoseconds retry_after{0};

    friend bool operator==(const outcome&, const outcome&) = default;
};

/// An outcome without the numbers a caller reports (count, remaining, retry_after):
/// what a decision that only admits or refuses needs (limiter::allow), plus what a
/// store keeps of every decision to evict well: when the state is back to fresh and
/// whether its quota is spent. An algorithm may compute it without the division its
/// count takes (`try_admit`); otherwise it is taken from the outcome (`of`).
struct admission {
    bool allowed = false;
    bool degraded = false;   ///< as outcome::degraded
    bool exhausted = false;  ///< no quota left after the decision (outcome::remaining == 0)
    std::chrono::nanoseconds reset_after{0};

    static constexpr admission of(const outcome& o) noexcept {
        return {o.allowed, o.degraded, o.remaining == 0, o.reset_after};
    }
    friend bool operator==(const admission&, const admission&) = default;
};

/// A fixed-capacity string holding a storage key (at most max_key_size bytes).
/// Trivially copyable; used so that decisions carry their key without allocating.
class key_buffer {
public:
    key_buffer() noexcept = default;
    explicit key_buffer(std::string_view s) noexcept { assign(s); }

    /// Copies `s`, truncated to max_key_size bytes (callers pass keys that fit).
    void assign(std::string_view s) noexcept {
        size_ = static_cast<std::uint16_t>(std::min(s.size(), max_key_size));
        if (size_ != 0) std::memcpy(data_, s.data(), size_);
    }
    /// Raw access for code that composes a key in place: write up to max_key_size
    /// bytes at buffer(), then resize() to the length written.
    char* buffer() noexcept { return data_; }
    void resize(std::size_t n) noexcept {
        size_ = static_cast<std::uint16_t>(std::min(n, max_key_size));
    }

    std::string_view view() const noexcept { return {data_, size_}; }
    operator std::string_view() const noexcept { return view(); }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    friend bool operator==(const key_buffer& a, const key_buffer& b) noexcept {
        return a.view() == b.view();
    }

private:
    std::uint16_t size_ = 0;
    char data_[max_key_size];
};

/// One rule's decision on one request.
/// `allowed` says whether this rule lets the request through: false when over the
/// limit (shadow mode included), and for a degraded decision under fail_closed.
/// `shadow` says the rule only observes, so the request proceeds anyway. `degraded`
/// says the store could not decide (then `count` is 0 and nothing was consumed).
/// Test `rejects()` (or the verdict) to decide whether to refuse the request, and
/// `kind()` for the outcome that is logged and counted.
/// `rule` views the limiter's rule storage (valid while the limiter lives); `key` is
/// the full storage key, e.g. "rule:login:ip:203.0.113.5".
struct decision {
    bool allowed = true;
    bool shadow = false;
    bool retryable = true;
    bool degraded = false;
    std::uint64_t limit = 0;
    std::uint64_t remaining = 0;
    std::uint64_t count = 0;
    std::chrono::nanoseconds reset_after{0};
    std::chrono::nanoseconds retry_after{0};
    std::string_view rule;
    key_buffer key;

    /// True when this decision refuses the request: over the limit (429), or degraded
    /// under fail_closed (503). Shadow rules never refuse.
    bool rejects() const noexcept { return !allowed && !shadow; }
    /// True when the client is over this rule's limit and the request is refused (429).
    bool blocked() const noexcept { return rejects() && !degraded; }
    /// The outcome, as logged and counted: degraded first, then allowed, then
    /// shadow_blocked or blocked.
    outcome_kind kind() const noexcept { return kind_of(degraded, allowed, shadow); }

    /// The outcome of a decision with these flags (kind() above, for callers that
    /// decide without building a decision).
    static constexpr outcome_kind kind_of(bool degraded, bool allowed, bool shadow) noexcept {
        if (degraded) return outcome_kind::degraded;
        if (allowed) return outcome_kind::allowed;
        return shadow ? outcome_kind::shadow_blocked : outcome_kind::blocked;
    }
};

/// Every rule's decision on one request, in rule order, stored inline (a limiter
/// has at most max_rules rules). The request proceeds iff no decision rejects() it.
/// Thread safety: a plain value.
class verdict {
public:
    static constexpr std::size_t max_rules = 8;

    verdict() noexcept = default;
    verdict(const verdict& other) noexcept : size_(other.size_) { copy_from(other); }
    verdict& operator=(const verdict& other) noexcept {
        if (this == &other) return *this;
        size_ = other.size_;
        copy_from(other);
        return *this;
    }

    /// True when the request may proceed: no rule refuses it.
    bool allowed() const noexcept {
        for (const auto& d : decisions())
            if (d.rejects()) return false;
        return true;
    }
    /// True when a rule finds the client over its limit and refuses the request (429).
    bool blocked() const noexcept {
        for (const auto& d : decisions())
            if (d.blocked()) return true;
        return false;
    }
    /// True when the store could not decide for some rule (whatever the policy did).
    bool degraded() const noexcept {
        for (const auto& d : decisions())
            if (d.degraded) return true;
        return false;
    }
    explicit operator bool() const noexcept { return allowed(); }

    std::span<const decision> decisions() const noexcept { return {data(), size_}; }
    std::span<decision> decisions() noexcept { return {data(), size_}; }
    std::size_t size() const noexcept { return size_; }
    const decision& operator[](std::size_t i) const noexcept { return data()[i]; }

    /// The decision that explains the response: the refusing one with the longest
    /// retry_after when refused, else the one with the fewest remaining units.
    /// Precondition: size() > 0.
    const decision& binding() const noexcept {
        const decision* best = data();
        bool best_blocks = best->rejects();
        for (const auto& d : decisions()) {
            const bool blocks = d.rejects();
            if (blocks && (!best_blocks || d.retry_after > best->retry_after)) {
                best = &d;
                best_blocks = true;
            } else if (!blocks && !best_blocks && d.remaining < best->remaining) {
                best = &d;
            }
        }
        return *best;
    }

    /// The longest wait among refusing decisions (0 when allowed; `never` when a
    /// blocking decision can never pass).
    std::chrono::nanoseconds retry_after() const noexcept {
        std::chrono::nanoseconds r{0};
        for (const auto& d : decisions())
            if (d.rejects()) r = std::max(r, d.retry_after);
        return r;
    }

    /// Appends a decision (precondition: size() < max_rules) and returns it. The
    /// decision is default-initialized: its fields hold their defaults and its key is
    /// empty, but the key's unused bytes are not zeroed (a verdict is built on every
    /// request; zeroing a key buffer per rule cost more than the rest of a hot decision).
    decision& emplace_back() noexcept { return *::new (data() + size_++) decision; }
    void clear() noexcept { size_ = 0; }

private:
    decision* data() noexcept { return std::launder(reinterpret_cast<decision*>(storage_)); }
    const decision* data() const noexcept {
        return std::launder(reinterpret_cast<const decision*>(storage_));
    }
    // Each decision's fields, then only the used bytes of its key: a decision is mostly
    // key buffer (64 bytes of fields and the key's length and bytes, instead of 328).
    void copy_from(const verdict& other) noexcept {
        // The key is the last member: the fields copied as bytes are all before it.
        static_assert(std::is_standard_layout_v<decision> &&
                      sizeof(decision) - offsetof(decision, key) - sizeof(key_buffer) <
                          alignof(decision));
        for (std::size_t i = 0; i < size_; ++i) {
            decision* d = ::new (storage_ + i * sizeof(decision)) decision;
            std::memcpy(static_cast<void*>(d), &other.data()[i], offsetof(decision, key));
            d->key.assign(other.data()[i].key.view());
        }
    }

    std::size_t size_ = 0;
    alignas(decision) unsigned char storage_[sizeof(decision) * max_rules];
};

}  // namespace smart_ratelimit
