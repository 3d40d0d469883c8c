// tests/support/checked_storage.hpp
// A storage for the failure-policy tests: an in-memory storage behind a check the
// test controls (Derived::check(), called before every operation, may throw or
// block), so outages and stalls need no real server and no timing.
#pragma once

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

namespace srl_test {

template <class Derived>
struct checked_storage {
    using algorithm_type = smart_ratelimit::any_algorithm;
    // Shared, so copies of the storage (the decorators hold theirs) see one state.
    std::shared_ptr<smart_ratelimit::in_memory_storage<>> inner =
        std::make_shared<smart_ratelimit::in_memory_storage<>>();

    smart_ratelimit::outcome acquire(std::string_view k, const algorithm_type& a,
                                     std::chrono::nanoseconds now, std::uint64_t c) {
        self().check();
        return inner->acquire(k, a, now, c);
    }
    smart_ratelimit::outcome peek(std::string_view k, const algorithm_type& a,
                                  std::chrono::nanoseconds now, std::uint64_t c) {
        self().check();
        return inner->peek(k, a, now, c);
    }
    void release(std::string_view k, const algorithm_type& a, std::chrono::nanoseconds now,
                 std::uint64_t c) {
        self().check();
        inner->release(k, a, now, c);
    }

private:
    const Derived& self() const { return static_cast<const Derived&>(*this); }
};

}  // namespace srl_test
