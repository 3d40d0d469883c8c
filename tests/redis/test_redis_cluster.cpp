// tests/redis/test_redis_cluster.cpp
// The Redis Cluster layer (redis/cluster.hpp): key slots against the cluster's own
// CLUSTER KEYSLOT, redirection and URL parsing, then a real three-master cluster on
// 127.0.0.1: commands reach each key's owner, a slot moved behind the client's back
// is followed (MOVED, the map read again), and a slot halfway through a migration is
// followed for the keys already moved (ASK).
#include "support/closed_port.hpp"
#include "support/redis_cluster.hpp"
#include "support/storage_contract.hpp"

#include <catch2/catch.hpp>

#include <smart_ratelimit/redis/cluster.hpp>
#include <smart_ratelimit/redis/redis_storage.hpp>
#include <smart_ratelimit/rule.hpp>

#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace srl = smart_ratelimit;
namespace sr = smart_ratelimit::redis;
namespace contract = srl_test::contract;
using namespace std::chrono_literals;

namespace {

sr::cluster_options quick_options() {
    sr::cluster_options o;
    o.max_redirections = 60;  // TRYAGAIN waits up to about 2.5 s for a test's migration
    o.node.conn.connect_timeout = std::chrono::milliseconds(1000);
    o.node.conn.command_timeout = std::chrono::milliseconds(1000);
    o.node.max_connections = 4;
    return o;
}

sr::command_args cmd(std::initializer_list<std::string_view> parts) {
    sr::command_args a;
    for (const auto p : parts) a << p;
    return a;
}

std::string text_of(const sr::reply_ptr& r) {
    if (r->type == REDIS_REPLY_NIL) return "(nil)";
    return std::string(r->str, r->len);
}

/// SET then GET of `key` through the cluster pool.
std::string set_get(sr::cluster_pool& pool, const std::string& key, const std::string& value) {
    const auto slot = sr::hash_slot(key);
    const auto set = pool.run(slot, [&](sr::connection& c) {
        return c.run(cmd({"SET", key, value}));
    });
    if (set->type == REDIS_REPLY_ERROR) return "ERR " + text_of(set);
    return text_of(pool.run(slot, [&](sr::connection& c) { return c.run(cmd({"GET", key})); }));
}

}  // namespace

TEST_CASE("key slots: CRC16 of the hash tag, modulo 16384", "[redis][cluster]") {
    CHECK(sr::detail::crc16("123456789") == 0x31C3);  // the CRC16/XMODEM check value
    CHECK(sr::hash_slot("foo") == 12182);
    CHECK(sr::hash_slot("{user1000}.following") == sr::hash_slot("user1000"));
    CHECK(sr::hash_slot("{user1000}.followers") == sr::hash_slot("{user1000}.following"));
    CHECK(sr::hash_slot("foo{}{bar}") == sr::hash_slot("foo{}{bar}"));  // empty tag: whole key
    CHECK(sr::hash_slot("foo{}{bar}") != sr::hash_slot("bar"));
    CHECK(sr::hash_slot("foo{{bar}}zap") == sr::hash_slot("{bar"));
    CHECK(sr::hash_slot("foo{bar}{zap}") == sr::hash_slot("bar"));
    CHECK(sr::hash_slot("") == 0);
}

TEST_CASE("redirections and cluster URLs parse, or are refused", "[redis][cluster]") {
    auto m = sr::parse_redirection("MOVED 3999 127.0.0.1:6381");
    REQUIRE(m);
    CHECK_FALSE(m->ask);
    CHECK(m->slot == 3999);
    CHECK(m->host == "127.0.0.1");
    CHECK(m->port == 6381);
    auto a = sr::parse_redirection("ASK 12182 ::1:7000");
    REQUIRE(a);
    CHECK(a->ask);
    CHECK(a->host == "::1");
    CHECK(a->port == 7000);
    for (const char* bad : {"ERR wrong", "MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 h:1",
                            "MOVED 1 h", "MOVED 1 h:0", "MOVED 1 :5", "ASK 1 h:99999"})
        CHECK_FALSE(sr::parse_redirection(bad));

    const auto seeds =
        sr::parse_redis_cluster_url("redis-cluster://u:pw@10.0.0.1:7000,10.0.0.2:7001/");
    REQUIRE(seeds.size() == 2);
    CHECK(seeds[1].host == "10.0.0.2");
    CHECK(seeds[1].port == 7001);
    CHECK(seeds[1].password == "pw");
    CHECK_THROWS_AS(sr::parse_redis_cluster_url("redis://h:1"), srl::config_error);
    CHECK_THROWS_AS(sr::parse_redis_cluster_url("redis-cluster://h:1/2"), srl::config_error);
    CHECK_THROWS_AS(sr::parse_redis_cluster_url("redis-cluster://h:1,"), srl::config_error);
    CHECK_THROWS_WITH(sr::parse_redis_cluster_url("redis-cluster://u:secret@h:x"),
                      !Catch::Contains("secret"));
}

TEST_CASE(
    "a real cluster: each key on its owner, a moved slot followed (MOVED), a migrating "
    "slot followed (ASK)",
    "[redis][cluster]") {
    srl_test::redis_cluster cluster;
    sr::cluster_pool pool(quick_options(), sr::parse_redis_cluster_url(cluster.url()));
    CHECK(pool.node_count() == 3);

    // Our slots agree with the server's, and every key lands on its owner.
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200; ++i) {
        const std::string key = "k:" + std::to_string(rng());
        CHECK(std::to_string(sr::hash_slot(key)) ==
              cluster.command(0, {"CLUSTER", "KEYSLOT", key}));
        CHECK(set_get(pool, key, "v" + std::to_string(i)) == "v" + std::to_string(i));
    }
    CHECK(pool.redirections() == 0);

    // A slot moves to another node behind the client's back: MOVED, then the map is
    // read again; the value moved with it.
    const std::string key = "{rate}:hot";
    const int slot = sr::hash_slot(key);
    REQUIRE(set_get(pool, key, "before") == "before");
    const std::size_t from = cluster.owner(slot);
    cluster.move_slot(slot, (from + 1) % cluster.size());
    const auto refreshes = pool.refreshes();
    CHECK(text_of(pool.run(slot, [&](sr::connection& c) {
              return c.run(cmd({"GET", key}));
          })) == "before");
    CHECK(pool.redirections() == 1);
    CHECK(pool.refreshes() > refreshes);
    CHECK(text_of(pool.run(slot, [&](sr::connection& c) {
              return c.run(cmd({"GET", key}));
          })) == "before");
    CHECK(pool.redirections() == 1);  // the map is right again

    // A slot halfway through a migration: the keys already moved are answered by the
    // importing node after ASK; the others still by the owner.
    const std::string a_key = "{mig}:a", b_key = "{mig}:b";
    REQUIRE(set_get(pool, a_key, "A") == "A");
    REQUIRE(set_get(pool, b_key, "B") == "B");
    const int mslot = sr::hash_slot(a_key);
    const std::size_t owner = cluster.owner(mslot);
    cluster.move_slot(mslot, (owner + 1) % cluster.size(), /*halfway=*/true, /*first_keys=*/1);
    const auto before = pool.redirections();
    CHECK(text_of(pool.run(mslot, [&](sr::connection& c) {
              return c.run(cmd({"GET", a_key}));
          })) == "A");
    CHECK(text_of(pool.run(mslot, [&](sr::connection& c) {
              return c.run(cmd({"GET", b_key}));
          })) == "B");
    CHECK(pool.redirections() == before + 1);  // one of the two keys had moved: one ASK
    // Both keys at once while they are split: TRYAGAIN until the migration ends.
    std::string both;
    std::thread mget([&] {
        const auto r = pool.run(mslot, [&](sr::connection& c) {
            return c.run(cmd({"MGET", a_key, b_key}));
        });
        both = r->type == REDIS_REPLY_ARRAY && r->elements == 2
                   ? std::string(r->element[0]->str, r->element[0]->len) +
                         std::string(r->element[1]->str, r->element[1]->len)
                   : "unexpected: " + std::to_string(r->type);
    });
    while (pool.redirections() < before + 2) std::this_thread::yield();  // a TRYAGAIN seen
    cluster.finish_move();
    mget.join();
    CHECK(both == "AB");
    CHECK(text_of(pool.run(mslot, [&](sr::connection& c) {
              return c.run(cmd({"GET", b_key}));
          })) == "B");
}

TEST_CASE("a cluster with no reachable seed fails each call with a storage_error",
          "[redis][cluster]") {
    const srl_test::closed_port closed;
    sr::cluster_pool pool(quick_options(),
                          sr::parse_redis_cluster_url("redis-cluster://" + closed.address()));
    CHECK_THROWS_WITH(pool.run(0, [](sr::connection& c) { return c.run(cmd({"PING"})); }),
                      Catch::Contains("no node answered CLUSTER SLOTS"));
    CHECK_THROWS_AS(pool.refresh(), srl::storage_error);
}

namespace {

srl_test::redis_cluster& shared_cluster() {
    static srl_test::redis_cluster c;
    return c;
}

std::string unique_prefix() {  // one counter for every algorithm's storage
    static std::atomic<int> n{0};
    return "test:" + std::to_string(::getpid()) + ":" + std::to_string(n++) + ":";
}

template <class A>
sr::basic_redis_storage<A> cluster_storage() {
    auto o = sr::redis_options_from_url(shared_cluster().url(), 2000ms, 2000ms, 4);
    o.prefix = unique_prefix();
    o.errors = sr::on_error::raise;
    return sr::basic_redis_storage<A>(o);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("redis cluster: the storage contract holds with keys on every node",
                        "[redis][cluster][storage][contract]", contract::all_combos) {
    auto s1 = cluster_storage<typename TestType::algorithm_type>();
    contract::admits_exactly_its_limit<TestType>(s1);
    auto s2 = cluster_storage<typename TestType::algorithm_type>();
    contract::keys_are_independent<TestType>(s2);
    auto s3 = cluster_storage<typename TestType::algorithm_type>();
    contract::count_plus_remaining_is_the_limit<TestType>(s3);
}

TEMPLATE_LIST_TEST_CASE("redis cluster: eight threads on one key at limit 10 admit exactly 10",
                        "[redis][cluster][storage][concurrency]", contract::dynamic_combos) {
    auto s = cluster_storage<srl::any_algorithm>();
    contract::eight_threads_admit_exactly_ten<TestType>(s, 5);
}

TEST_CASE(
    "redis cluster: a hot key's slot resharded twice under load is admitted exactly its "
    "limit",
    "[redis][cluster][storage][concurrency]") {
    for (const char* name : {"fixed_window", "sliding_window", "token_bucket"}) {
        INFO(name);
        srl_test::redis_cluster cluster;
        auto o = sr::redis_options_from_url(cluster.url(), 2000ms, 2000ms, 4);
        o.errors = sr::on_error::raise;
        sr::redis_storage s(o);
        const auto a = srl::make_algorithm<srl::any_algorithm>(name, srl::rate{300, 1h});
        const std::string key = "hot";
        const int slot = sr::hash_slot(s.redis_key(key, a));
        std::atomic<int> admitted{0}, attempts{0}, errors{0};
        std::atomic<bool> stop{false};
        std::mutex error_mutex;
        std::string last_error;
        std::vector<std::thread> load;
        for (int t = 0; t < 4; ++t)
            load.emplace_back([&] {
                while (!stop.load()) {
                    try {
                        if (s.acquire(key, a, 0ns, 1).allowed) admitted.fetch_add(1);
                    } catch (const srl::storage_error& e) {
                        errors.fetch_add(1);
                        std::lock_guard lock(error_mutex);
                        last_error = e.what();
                    }
                    attempts.fetch_add(1);
                }
            });
        auto wait_for = [&](auto done) {
            const auto deadline = std::chrono::steady_clock::now() + 60s;
            while (!done() && std::chrono::steady_clock::now() < deadline)
                std::this_thread::yield();
            return done();
        };
        CHECK(wait_for([&] { return admitted.load() >= 100; }));
        const std::size_t first = cluster.owner(slot);
        cluster.move_slot(slot, (first + 1) % cluster.size());
        CHECK(wait_for([&] { return admitted.load() >= 200; }));
        // Halfway: every key of the decision moved, the slot not yet handed over, so
        // each call is answered by the importing node after an ASK.
        cluster.move_slot(slot, (first + 2) % cluster.size(), /*halfway=*/true, 3);
        const int at_halfway = attempts.load();
        CHECK(wait_for([&] { return attempts.load() >= at_halfway + 50; }));
        cluster.finish_move();
        CHECK(wait_for([&] { return admitted.load() >= 300 && attempts.load() >= 1500; }));
        stop = true;
        for (auto& t : load) t.join();
        CHECK(admitted.load() == 300);
        INFO("last error: " << last_error);
        CHECK(errors.load() == 0);
        CHECK(s.cluster_of()->redirections() >= 2);
    }
}
