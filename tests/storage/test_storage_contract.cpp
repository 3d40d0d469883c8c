// tests/storage/test_storage_contract.cpp
// The storage contract (support/storage_contract.hpp) over both in-memory storages
// (in_memory_storage and concurrent_storage): every algorithm, as a static type and
// through any_algorithm (and gcra, which only these storages run), with std::mutex
// and with null_mutex; the manual-clock cases too, since these storages decide on the
// `now` they are given. What only one of them
// does is in test_storage.cpp and test_concurrent_storage.cpp.
#include <catch2/catch.hpp>

#include "support/storage_contract.hpp"

#include <smart_ratelimit/algorithms/gcra.hpp>
#include <smart_ratelimit/storage/concurrent_storage.hpp>
#include <smart_ratelimit/storage/in_memory_storage.hpp>

#include <mutex>
#include <string>
#include <tuple>

namespace srl = smart_ratelimit;
namespace contract = srl_test::contract;
namespace manual = srl_test::contract::manual_clock;

namespace {

// A contract combo (the algorithm, static or by name) over Storage<_, Mutex>.
template <class Combo, template <class, class> class Storage, class Mutex>
struct in_memory : Combo {
    using storage_type = Storage<typename Combo::algorithm_type, Mutex>;

    static storage_type make_storage() {
        srl::in_memory_options o;
        o.max_keys = 1000;
        o.shards = 4;
        return storage_type(o);
    }
};

template <template <class, class> class Storage, class Mutex, class... Combo>
std::tuple<in_memory<Combo, Storage, Mutex>...> over(std::tuple<Combo...>);

template <class A, class M>
using sharded = srl::in_memory_storage<A, M>;
template <class A, class M>
using concurrent = srl::concurrent_storage<A, M>;

// Every algorithm of the contract, and gcra, which runs only in process.
using in_process_combos = decltype(std::tuple_cat(contract::all_combos{},
                                                  std::tuple<contract::static_combo<srl::gcra>>{}));

// Both in-memory storages, with a real mutex (threads may insert at once) and without.
using locked_combos = decltype(std::tuple_cat(over<sharded, std::mutex>(in_process_combos{}),
                                              over<concurrent, std::mutex>(in_process_combos{})));
using all_combos =
    decltype(std::tuple_cat(locked_combos{}, over<sharded, srl::null_mutex>(in_process_combos{}),
                            over<concurrent, srl::null_mutex>(in_process_combos{})));

}  // namespace

TEMPLATE_LIST_TEST_CASE(
    "in memory: an algorithm admits exactly its limit, then denies with a finite wait",
    "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    contract::admits_exactly_its_limit<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("in memory: a key over a lowered limit is denied",
                        "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    contract::lowered_limit_denies_a_full_key<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE(
    "in memory: cost counts several units and a cost above the limit is never retryable",
    "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    contract::cost_counts_several_units<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("in memory: keys are independent", "[algorithm][storage][contract]",
                        all_combos) {
    auto s = TestType::make_storage();
    contract::keys_are_independent<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("in memory: peek decides without consuming and release gives units back",
                        "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    contract::peek_and_release<TestType>(s, [&](const std::string& key, const auto&) {
        return s.visit(key, [](const auto* state) { return state != nullptr; });
    });
    CHECK(s.size() == 1);
}

TEMPLATE_LIST_TEST_CASE("in memory: count plus remaining is the limit on every decision",
                        "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    contract::count_plus_remaining_is_the_limit<TestType>(s);
    auto moving = TestType::make_storage();
    manual::count_plus_remaining_as_time_moves<TestType>(moving);
}

TEMPLATE_LIST_TEST_CASE("in memory: the largest limits and periods do not overflow",
                        "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    contract::largest_limits_do_not_overflow<TestType>(s);
    auto moving = TestType::make_storage();
    manual::largest_limits_do_not_overflow<TestType>(moving);
}

TEMPLATE_LIST_TEST_CASE("in memory: eight threads on one key at limit 10 admit exactly 10",
                        "[algorithm][storage][contract][concurrency]", locked_combos) {
    auto s = TestType::make_storage();
    contract::eight_threads_admit_exactly_ten<TestType>(s, 50);
}

TEMPLATE_LIST_TEST_CASE(
    "in memory: eight threads racing on one key at limit 2000 admit exactly 2000",
    "[algorithm][storage][contract][concurrency]", locked_combos) {
    // Thousands of admissions contended from the first: decisions that lose a race to
    // another writer and decide again, locked or not, each count once.
    auto s = TestType::make_storage();
    contract::eight_threads_admit_exactly<TestType>(s, 2000, 1000);
}

// ---- on the caller's clock -----------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("in memory: waiting retry_after is enough and one nanosecond less is not",
                        "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    manual::retry_after_is_exact<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("in memory: after reset_after the full quota is back",
                        "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    manual::full_quota_after_reset_after<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("in memory: peek reports the outcome the next acquire makes",
                        "[algorithm][storage][contract]", all_combos) {
    manual::peek_reports_the_next_acquire<TestType>([] { return TestType::make_storage(); });
}

TEMPLATE_LIST_TEST_CASE(
    "in memory: a backwards clock step neither drains quota nor gives a negative wait",
    "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    manual::backwards_clock_step<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("in memory: a huge forward jump refills at most to capacity",
                        "[algorithm][storage][contract]", all_combos) {
    auto s = TestType::make_storage();
    manual::huge_forward_jump<TestType>(s);
}
