// tests/storage/test_concurrent_storage.cpp
// What concurrent_storage does beyond the storage contract (test_storage_contract.cpp
// runs that on it): exact admissions when eight threads insert and decide on many keys
// at once, for every algorithm, and while other threads churn keys through a full
// shard; denials that write nothing; the key bound and the eviction order (idle, then
// least recently used, over-limit keys last; the million-key flood is in
// test_key_flooding.cpp) and when a key turns idle; the state_store interface; shards
// switching to SipHash while other threads decide; every key-size class, the longest
// key and the node's size; the node a thread remembers answering only for its own key
// in its own storage; a lookup begun before the decision's time (start_lookup).
#include <catch2/catch.hpp>

#include <smart_ratelimit/algorithms/any_algorithm.hpp>
#include <smart_ratelimit/storage/concurrent_storage.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

namespace {

const std::chrono::nanoseconds t0 = 864000s;

srl::in_memory_options opts(std::size_t max_keys, std::size_t shards) {
    srl::in_memory_options o;
    o.max_keys = max_keys;
    o.shards = shards;
    return o;
}

template <class Fn>
void on_threads(int n, Fn fn) {
    std::atomic<int> ready{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < n; ++t)
        ts.emplace_back([&, t] {
            ready.fetch_add(1);
            while (ready.load() < n) {}
            fn(t);
        });
    for (auto& t : ts) t.join();
}

}  // namespace

TEST_CASE(
    "concurrent: eight threads inserting and deciding on 64 keys admit exactly the limit "
    "of each, for every algorithm",
    "[storage][concurrency]") {
    for (const auto name : srl::any_algorithm::names) {
        INFO(name);
        srl::concurrent_storage<srl::any_algorithm> s(opts(10'000, 8));
        const srl::any_algorithm a(name, srl::rate{25, 1h});
        constexpr int keys = 64;
        std::atomic<int> units[keys] = {};
        on_threads(8, [&](int t) {
            for (int round = 0; round < 40; ++round)
                for (int k = 0; k < keys; ++k) {
                    const int key = (k + t * 7) % keys;  // threads meet on every key
                    const std::uint64_t cost = 1 + (round + t) % 2;
                    if (s.acquire("k" + std::to_string(key), a, t0, cost).allowed)
                        units[key].fetch_add(static_cast<int>(cost));
                }
        });
        // Costs of 1 and 2 against 25 units, 320 attempts per key: each key's 25 units
        // are spent exactly once.
        for (int k = 0; k < keys; ++k) CHECK(units[k].load() == 25);
        CHECK(s.size() == keys);
    }
}

TEST_CASE("concurrent: a blocked key stays blocked while seven threads churn a full shard",
          "[storage][concurrency]") {
    srl::concurrent_storage<srl::token_bucket> s(opts(64, 1));
    const srl::token_bucket login(srl::rate{10, 1h});
    const srl::token_bucket api(srl::rate{1000, 1min});
    for (int i = 0; i < 10; ++i) REQUIRE(s.acquire("login:victim", login, t0, 1).allowed);
    std::atomic<int> admitted{0};
    std::atomic<bool> churning{true};
    on_threads(8, [&](int t) {
        if (t == 0) {
            while (churning.load())
                if (s.acquire("login:victim", login, t0, 1).allowed) admitted.fetch_add(1);
            return;
        }
        for (int i = 0; i < 20'000; ++i)
            s.acquire("ip:" + std::to_string(t) + "." + std::to_string(i), api, t0 + 1s, 1);
        if (t == 1) churning.store(false);
    });
    CHECK(admitted.load() == 0);
    CHECK(s.stats().evictions_over_limit == 0);
    CHECK(s.stats().evictions() > 100'000);
    CHECK_FALSE(s.acquire("login:victim", login, t0 + 2s, 1).allowed);
}

TEST_CASE("concurrent: a denial that changes nothing writes nothing", "[storage]") {
    srl::concurrent_storage<srl::token_bucket> s(opts(100, 1));
    const srl::token_bucket tb(srl::rate{2, 1s});
    REQUIRE(s.acquire("k", tb, t0, 1).allowed);
    REQUIRE(s.acquire("k", tb, t0, 1).allowed);
    const auto state = [&] {
        return s.visit("k", [](const srl::token_bucket::state_type* p) { return *p; });
    };
    const auto before = state();
    const srl::outcome d = s.acquire("k", tb, t0 + 100ms, 1);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after == 400ms);
    const auto after = state();
    CHECK(after.last == before.last);  // the refill is not written back
    CHECK(after.used == before.used);
    // The refill still counts: at t0 + 500ms one token is back.
    CHECK(s.acquire("k", tb, t0 + 500ms, 1).allowed);
    CHECK_FALSE(s.acquire("k", tb, t0 + 500ms, 1).allowed);
}

TEST_CASE("concurrent: update and visit, the state_store interface", "[storage]") {
    srl::concurrent_storage<srl::fixed_window> s(opts(100, 4));
    srl::fixed_window::state_type init;
    init.count = 5;
    CHECK(s.update("k", init, [](auto& st) { return ++st.count; }) == 6);
    CHECK(s.update("k", init, [](auto& st) { return ++st.count; }) == 7);
    CHECK(s.visit("k", [](const auto* st) { return st ? st->count : 0; }) == 7);
    CHECK(s.visit("absent", [](const auto* st) { return st == nullptr; }));
    // A callback that throws after changing the state leaves the key usable.
    CHECK_THROWS_AS(s.update("k", init,
                             [](auto& st) -> int {
                                 st.count = 100;
                                 throw std::runtime_error("boom");
                             }),
                    std::runtime_error);
    CHECK(s.update("k", init, [](auto& st) { return st.count; }) == 100);
    CHECK(s.erase("k"));
    CHECK_FALSE(s.erase("k"));
    CHECK(s.size() == 0);

    // The exact sliding window's state (a log) is kept under the key's lock.
    srl::concurrent_storage<srl::sliding_window> logs(opts(100, 4));
    const srl::sliding_window sw(srl::rate{3, 1s});
    for (int i = 0; i < 3; ++i) REQUIRE(logs.acquire("k", sw, t0 + i * 1ms, 1).allowed);
    CHECK_FALSE(logs.acquire("k", sw, t0 + 5ms, 1).allowed);
    CHECK(logs.visit("k", [](const auto* st) { return st->total; }) == 3);
    CHECK(logs.acquire("k", sw, t0 + 1s, 1).allowed);
}

TEST_CASE(
    "concurrent: a full shard evicts an idle key, then the least recently used, and "
    "a key over its limit last",
    "[storage]") {
    srl::concurrent_storage_st<srl::any_algorithm> s(opts(3, 1));
    const srl::any_algorithm hourly("fixed_window", srl::rate{2, 1h});
    const srl::any_algorithm once("fixed_window", srl::rate{1, 1h});
    const srl::any_algorithm per_second("fixed_window", srl::rate{2, 1s});
    REQUIRE(s.acquire("blocked", once, t0, 1).allowed);
    REQUIRE(s.acquire("idle-soon", per_second, t0, 1).allowed);
    REQUIRE(s.acquire("active", hourly, t0, 1).allowed);
    REQUIRE(s.acquire("new", hourly, t0 + 2s, 1).allowed);
    CHECK(s.stats().evictions_idle == 1);
    CHECK(s.visit("idle-soon", [](const auto* p) { return p == nullptr; }));
    // No idle key: one with quota left goes ("active" or "new"), never "blocked".
    for (int i = 0; i < 20; ++i)
        REQUIRE(s.acquire("fresh" + std::to_string(i), hourly, t0 + 3s, 1).allowed);
    const srl::in_memory_stats st = s.stats();
    CHECK(st.keys == 3);
    CHECK(st.evictions_lru == 20);
    CHECK(st.evictions_over_limit == 0);
    CHECK_FALSE(s.acquire("blocked", once, t0 + 4s, 1).allowed);
    // A shard of keys over their limit: a newcomer takes one of them.
    srl::concurrent_storage_st<srl::fixed_window> full(opts(2, 1));
    const srl::fixed_window one(srl::rate{1, 1h});
    for (const char* k : {"a", "b", "c"}) REQUIRE(full.acquire(k, one, t0, 1).allowed);
    CHECK(full.stats().evictions_over_limit == 1);
    CHECK(full.size() == 2);
}

TEST_CASE("concurrent: shards switch to siphash while other threads decide, and lose no key",
          "[storage][concurrency][hash]") {
    // A probe cap of 1 makes the switch happen within the first few dozen inserts of a
    // shard, while three threads keep deciding on keys inserted before.
    srl::concurrent_storage<srl::fixed_window> s(opts(4096, 4), 1);
    const srl::fixed_window five(srl::rate{5, 1h});
    std::vector<std::string> old_keys;
    for (int i = 0; i < 8; ++i) old_keys.push_back("old:" + std::to_string(i));
    for (const auto& k : old_keys) REQUIRE(s.acquire(k, five, t0, 1).allowed);
    std::atomic<int> admitted{0};
    std::atomic<int> deciding{0};  // deciders that have made a pass
    std::atomic<bool> inserting{true};
    on_threads(4, [&](int t) {
        if (t == 0) {
            // The inserts start once every decider is at work (on a loaded machine the
            // inserter could otherwise finish before the others are scheduled).
            while (deciding.load() < 3) std::this_thread::yield();
            for (int i = 0; i < 2000; ++i) s.acquire("new:" + std::to_string(i), five, t0, 1);
            inserting.store(false);
            return;
        }
        // Passes over the old keys until one begun after the inserts admits nothing:
        // then every old key is spent, whatever the scheduling was.
        for (bool first = true;; first = false) {
            const bool during = inserting.load();
            int got = 0;
            for (const auto& k : old_keys)
                if (s.acquire(k, five, t0, 1).allowed) ++got;
            admitted.fetch_add(got);
            if (first) deciding.fetch_add(1);
            if (!during && got == 0) break;
        }
    });
    CHECK(admitted.load() == 8 * 4);  // each old key had 4 units left, none more
    const srl::in_memory_stats st = s.stats();
    CHECK(st.strong_hash_shards == 4);
    CHECK(st.keys == 2008);
    for (const auto& k : old_keys) CHECK_FALSE(s.acquire(k, five, t0, 1).allowed);
    for (int i = 0; i < 2000; ++i)
        CHECK(s.visit("new:" + std::to_string(i), [](const auto* p) { return p ? p->count : 0; }) ==
              1);
}

TEST_CASE("concurrent: keys of every size class are stored apart and found again", "[storage]") {
    srl::concurrent_storage<srl::fixed_window> s(opts(10'000, 4));
    const srl::fixed_window one(srl::rate{1, 1h});
    std::vector<std::string> keys{""};
    for (std::size_t n = 1; n <= 600; n += (n < 140 ? 1 : 37)) {
        keys.push_back(std::string(n, 'k'));
        keys.push_back(std::string(n - 1, 'k') + 'x');  // differs in the last byte only
    }
    for (const auto& k : keys) REQUIRE(s.acquire(k, one, t0, 1).allowed);
    for (const auto& k : keys) CHECK_FALSE(s.acquire(k, one, t0, 1).allowed);
    // Evicted nodes are reused within their class: erase all and insert again.
    for (const auto& k : keys) REQUIRE(s.erase(k));
    for (const auto& k : keys) REQUIRE(s.acquire(k, one, t0, 1).allowed);
    CHECK(s.size() == keys.size());
}

TEST_CASE("concurrent: a key of up to 65,535 bytes is stored, a longer one refused", "[storage]") {
    srl::concurrent_storage<srl::fixed_window> s(opts(100, 1));
    const srl::fixed_window one(srl::rate{1, 1h});
    REQUIRE(s.acquire("kept", one, t0, 1).allowed);
    const std::string longest(65'535, 'k');
    REQUIRE(s.acquire(longest, one, t0, 1).allowed);
    CHECK_FALSE(s.acquire(longest, one, t0, 1).allowed);
    const std::string too_long(65'536, 'k');
    CHECK_THROWS_WITH(s.acquire(too_long, one, t0, 1), Catch::Contains("65535 bytes"));
    CHECK_THROWS_AS(s.update(too_long, {}, [](auto&) { return 0; }), std::length_error);
    // Nothing was stored or lost.
    CHECK(s.visit(too_long, [](const auto* p) { return p == nullptr; }));
    CHECK(s.size() == 2);
    CHECK_FALSE(s.acquire("kept", one, t0, 1).allowed);
}

TEST_CASE(
    "concurrent: a key turns idle no sooner than its state is as good as fresh, and at "
    "most 67 ms later",
    "[storage]") {
    // "a" (1/s) is as good as fresh at t0 + 1s; "b" (1/h) not for an hour. A newcomer
    // at time `at` in the full shard evicts "a" as idle, or someone by recency.
    const auto evicts_idle = [](std::chrono::nanoseconds at) {
        srl::concurrent_storage_st<srl::fixed_window> s(opts(2, 1));
        REQUIRE(s.acquire("a", srl::fixed_window(srl::rate{1, 1s}), t0, 1).allowed);
        REQUIRE(s.acquire("b", srl::fixed_window(srl::rate{1, 1h}), t0, 1).allowed);
        (void)s.acquire("c", srl::fixed_window(srl::rate{1, 1h}), at, 1);
        return s.stats().evictions_idle == 1;
    };
    CHECK_FALSE(evicts_idle(t0 + 1s - 1ns));
    CHECK(evicts_idle(t0 + 1s + 67'108'864ns));
    CHECK(evicts_idle(t0 + 2s));
}

TEST_CASE(
    "concurrent: a node's idle time compares across negative times, a year ahead, and "
    "never",
    "[storage]") {
    using node = srl::detail::concurrent_node<srl::token_bucket::state_type>;
    const std::int64_t tick = std::int64_t{1} << node::tick_shift;
    const auto node_marked = [](std::int64_t now, std::int64_t idle_at) {
        auto n = std::make_unique<node>();
        n->mark(now, idle_at, false);
        return n;
    };
    const std::int64_t s = 1'000'000'000;
    auto neg = node_marked(-5 * s, -4 * s);
    CHECK_FALSE(neg->idle(-4 * s - 1));
    CHECK(neg->idle(-4 * s + tick));
    const std::int64_t year = 366 * 86'400 * s;
    auto ahead = node_marked(7 * s, 7 * s + year);
    CHECK_FALSE(ahead->idle(7 * s));
    CHECK_FALSE(ahead->idle(7 * s + year - 1));
    CHECK(ahead->idle(7 * s + year + tick));
    auto never = node_marked(7 * s, std::numeric_limits<std::int64_t>::max());
    CHECK_FALSE(never->idle(7 * s + 4 * year));
    CHECK_FALSE(never->idle(std::numeric_limits<std::int64_t>::max()));
    never->mark(7 * s, 8 * s, true);  // a later decision makes it an ordinary key again
    CHECK(never->over());
    CHECK(never->idle(9 * s));
    never->pin();
    CHECK_FALSE(never->idle(9 * s));
}

TEST_CASE(
    "concurrent: the node a thread decided on last answers only for its key, in its "
    "storage, while that storage has it",
    "[storage]") {
    using storage = srl::concurrent_storage<srl::fixed_window>;
    const srl::fixed_window once(srl::rate{1, 1h});
    const auto spent = [&](storage& s, const char* key) {
        return !s.acquire(key, once, t0, 1).allowed;
    };

    // Two storages of one type: a key has a state in each.
    storage a(opts(100, 1)), b(opts(100, 1));
    REQUIRE_FALSE(spent(a, "k"));
    CHECK_FALSE(spent(b, "k"));
    CHECK(spent(a, "k"));
    CHECK_FALSE(spent(a, "j"));  // same length and node class, decided right after "k"
    CHECK(spent(b, "k"));
    REQUIRE(a.erase("k"));
    CHECK_FALSE(spent(a, "k"));

    // "k" evicted by an insert that does not decide, its node reused for "x" (spent):
    // "k" starts fresh.
    storage full(opts(1, 1));
    REQUIRE_FALSE(spent(full, "k"));
    srl::fixed_window::state_type used;
    used.window_start = t0.count();
    used.count = 1;
    full.update("x", used, [](auto&) { return 0; });
    REQUIRE(full.stats().evictions() == 1);
    CHECK_FALSE(spent(full, "k"));

    // Moved: the nodes go with their storage; the ones a storage had before it was
    // assigned to are gone.
    storage source(opts(100, 1)), target(opts(100, 1));
    REQUIRE_FALSE(spent(source, "k"));
    REQUIRE_FALSE(spent(target, "fresh in source"));
    target = std::move(source);
    CHECK_FALSE(spent(target, "fresh in source"));
    CHECK(spent(target, "k"));
    storage moved(std::move(target));
    CHECK(spent(moved, "k"));
    CHECK(spent(moved, "fresh in source"));

    // Destroyed, and another storage built in its place.
    std::optional<storage> place;
    place.emplace(opts(100, 1));
    REQUIRE_FALSE(spent(*place, "k"));
    place.reset();
    place.emplace(opts(100, 1));
    CHECK_FALSE(spent(*place, "k"));
}

TEST_CASE(
    "concurrent: a lookup begun before the decision's time decides as acquire and admit on "
    "its key do, the key repeated or not, across storages, and after its key was evicted",
    "[storage]") {
    using storage = srl::concurrent_storage<srl::fixed_window>;
    using reference = srl::in_memory_storage_st<srl::fixed_window>;
    const srl::fixed_window three(srl::rate{3, 1h});
    // Three storages of one type on one thread, each beside a reference store, fed the
    // same random decisions: a run on one key (the remembered node answers), keys
    // alternating (the hash and the probe answer), storages alternating (the node
    // remembered is another storage's); some lookups begun, then other decisions made,
    // before the lookup is used.
    storage ours[3] = {storage(opts(100, 1)), storage(opts(100, 4)), storage(opts(100, 1))};
    reference refs[3] = {reference(opts(100, 1)), reference(opts(100, 1)), reference(opts(100, 1))};
    const std::string keys[] = {"k", "j", "a key longer than sixteen bytes", ""};
    std::mt19937 rng(20261206);
    int begun_early = 0;
    for (int i = 0; i < 4000; ++i) {
        const std::size_t at = rng() % 8 < 6 ? 0 : rng() % 3;  // mostly storage 0
        const std::string& key = keys[rng() % 8 < 5 ? 0 : rng() % 4];
        const auto now = t0 + std::chrono::minutes(i / 40);  // windows roll over
        const srl::outcome want = refs[at].acquire(key, three, now, 1);
        const auto begun = ours[at].start_lookup(key);
        REQUIRE(begun.key() == key);
        if (rng() % 4 == 0) {  // other decisions between the lookup and its use
            ++begun_early;
            const std::size_t other = (at + 1) % 3;
            (void)refs[other].acquire("j", three, now, 1);
            (void)ours[other].acquire("j", three, now, 1);
            (void)refs[other].acquire("j", three, now, 1);
            (void)ours[other].acquire("j", three, now, 1);
        }
        INFO("decision " << i << " on storage " << at << ", key \"" << key << "\"");
        if (rng() % 2 == 0) {
            const srl::outcome got = ours[at].acquire(begun, three, now, 1);
            REQUIRE(got.allowed == want.allowed);
            REQUIRE(got.count == want.count);
            REQUIRE(got.remaining == want.remaining);
            REQUIRE(got.reset_after == want.reset_after);
        } else {
            const srl::admission got = ours[at].admit(begun, three, now, 1);
            REQUIRE(got.allowed == want.allowed);
            REQUIRE(got.exhausted == (want.remaining == 0));
            REQUIRE(got.reset_after == want.reset_after);
        }
    }
    CHECK(begun_early > 500);

    // The key evicted, and its node reused for another key, between the lookup and its
    // use: the key starts fresh, whether it was remembered (decided on twice in a row)
    // or hashed.
    for (const bool repeated : {true, false}) {
        storage full(opts(1, 1));
        REQUIRE(full.acquire("k", three, t0, 1).allowed);
        if (repeated)
            REQUIRE(full.acquire("k", three, t0, 1).allowed);
        else
            REQUIRE(srl::concurrent_storage<srl::fixed_window>(opts(1, 1))
                        .acquire("j", three, t0, 1)
                        .allowed);  // another storage: this thread's remembered node moves
        const auto begun = full.start_lookup("k");
        srl::fixed_window::state_type used;
        used.window_start = t0.count();
        used.count = 3;
        full.update("x", used, [](auto&) { return 0; });
        REQUIRE(full.stats().evictions() == 1);
        const srl::outcome o = full.acquire(begun, three, t0, 1);
        CHECK(o.allowed);
        CHECK(o.count == 1);
    }
}

TEST_CASE("concurrent: a token-bucket key of up to 16 bytes takes a 56-byte node", "[storage]") {
    using node = srl::detail::concurrent_node<srl::token_bucket::state_type>;
    CHECK(node::bytes(srl::detail::key_class(16)) == 56);
    CHECK(node::bytes(srl::detail::key_class(17)) == 64);
}
