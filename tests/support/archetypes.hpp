// tests/support/archetypes.hpp
// Archetypes: the smallest types that satisfy each concept of concepts.hpp, exactly
// as its expression table says and nothing more. test_concepts.cpp asserts them.
#pragma once

#include <smart_ratelimit/concepts.hpp>
#include <smart_ratelimit/decision.hpp>
#include <smart_ratelimit/event.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace srl_test::archetype {

namespace srl = smart_ratelimit;

struct clock {
    std::chrono::nanoseconds now() const noexcept { return std::chrono::nanoseconds(0); }
    srl::event_time wall_now() const noexcept { return {}; }
};

struct algorithm {
    struct state_type {};
    std::uint64_t limit() const { return 1; }
    std::chrono::nanoseconds period() const { return std::chrono::seconds(1); }
    srl::outcome try_acquire(state_type&, std::chrono::nanoseconds, std::uint64_t) const {
        return {};
    }
    srl::outcome peek(const state_type&, std::chrono::nanoseconds, std::uint64_t) const {
        return {};
    }
    void release(state_type&, std::chrono::nanoseconds, std::uint64_t) const {}
};

struct state_store {
    using state_type = int;
    template <class Fn>
    decltype(auto) update(std::string_view, const state_type& init, Fn&& fn) {
        value = init;
        return fn(value);
    }
    template <class Fn>
    decltype(auto) visit(std::string_view, Fn&& fn) const {
        return fn(static_cast<const state_type*>(nullptr));
    }
    int value = 0;
};

struct storage_backend {
    using algorithm_type = algorithm;
    srl::outcome acquire(std::string_view, const algorithm&, std::chrono::nanoseconds,
                         std::uint64_t) {
        return {};
    }
    srl::outcome peek(std::string_view, const algorithm&, std::chrono::nanoseconds, std::uint64_t) {
        return {};
    }
    void release(std::string_view, const algorithm&, std::chrono::nanoseconds, std::uint64_t) {}
};

struct request {};

struct key_extractor {
    std::string_view operator()(const request&) const { return "k"; }
};

struct event_sink {
    void record(const srl::event&) {}
};

}  // namespace srl_test::archetype
