// smart_ratelimit/analytics/detail/string_table.hpp
// The grouping table behind the key-grouping analytics: an open-addressing hash
// map from string_view to a small value, with linear probing and stored hashes.
// Each key is copied once, on first sight, into the table's own arena: lookups then
// touch a few compact megabytes instead of the caller's (possibly huge, possibly
// transient) events. Internal; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit::detail::analytics {

template <class Value>
class string_table {
public:
    struct entry {
        std::size_t hash = 0;  // 0 marks an empty slot
        std::string_view key;
        Value value{};
    };

    string_table() { slots_.resize(initial_capacity); }

    /// The value for `key`, default-constructed (and the key copied) on first sight.
    Value& operator()(std::string_view key) {
        std::size_t h = std::hash<std::string_view>{}(key);
        h += (h == 0);
        std::size_t mask = slots_.size() - 1;
        std::size_t i = h & mask;
        for (;;) {
            entry& s = slots_[i];
            if (s.hash == h && s.key == key) return s.value;
            if (s.hash == 0) break;
            i = (i + 1) & mask;
        }
        if ((size_ + 1) * 2 > slots_.size()) {
            grow();
            mask = slots_.size() - 1;
            i = h & mask;
            while (slots_[i].hash != 0) i = (i + 1) & mask;
        }
        entry& s = slots_[i];
        s.hash = h;
        s.key = copy(key);
        ++size_;
        return s.value;
    }

    std::size_t size() const noexcept { return size_; }

    /// Calls f(key, value) for every entry, in unspecified order.
    template <class F>
    void for_each(F&& f) const {
        for (const entry& s : slots_)
            if (s.hash != 0) f(s.key, s.value);
    }

private:
    static constexpr std::size_t initial_capacity = 256;
    static constexpr std::size_t chunk_size = 64 * 1024;

    void grow() {
        std::vector<entry> old(slots_.size() * 2);
        old.swap(slots_);
        const std::size_t mask = slots_.size() - 1;
        for (entry& s : old) {
            if (s.hash == 0) continue;
            std::size_t i = s.hash & mask;
            while (slots_[i].hash != 0) i = (i + 1) & mask;
            slots_[i] = std::move(s);
        }
    }

    std::string_view copy(std::string_view key) {
        if (key.empty()) return {};
        if (key.size() > chunk_size / 4) {
            big_.push_back(std::make_unique<char[]>(key.size()));
            std::memcpy(big_.back().get(), key.data(), key.size());
            return {big_.back().get(), key.size()};
        }
        if (chunks_.empty() || used_ + key.size() > chunk_size) {
            chunks_.push_back(std::make_unique<char[]>(chunk_size));
            used_ = 0;
        }
        char* p = chunks_.back().get() + used_;
        std::memcpy(p, key.data(), key.size());
        used_ += key.size();
        return {p, key.size()};
    }

    std::vector<entry> slots_;
    std::size_t size_ = 0;
    std::vector<std::unique_ptr<char[]>> chunks_;
    std::vector<std::unique_ptr<char[]>> big_;
    std::size_t used_ = 0;
};

}  // namespace smart_ratelimit::detail::analytics
