// tests/redis/test_redis_cluster.cpp
// The Redis Cluster layer (redis/cluster.hpp): key slots against the cluster's own
// CLUSTER KEYSLOT, redirection and URL parsing, then a real three-master cluster on
// 127.0.0.1: commands reach each key's owner, a slot moved behind the client's back
// is followed (MOVED, the map read again), and a slot halfway through a migration is
// followed for the keys already moved (ASK).
#include "support/redis_cluster.hpp"

#include <catch2/catch.hpp>

#include <smart_ratelimit/redis/cluster.hpp>

#include <random>
#include <string>

namespace srl = smart_ratelimit;
namespace sr = smart_ratelimit::redis;

namespace {

sr::cluster_options quick_options() {
    sr::cluster_options o;
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
    cluster.finish_move();
    CHECK(text_of(pool.run(mslot, [&](sr::connection& c) {
              return c.run(cmd({"GET", b_key}));
          })) == "B");
}

TEST_CASE("a cluster pool with no reachable seed is a storage_error", "[redis][cluster]") {
    const int port = srl_test::free_port();
    CHECK_THROWS_AS(
        sr::cluster_pool(quick_options(), sr::parse_redis_cluster_url("redis-cluster://127.0.0.1:" +
                                                                      std::to_string(port))),
        srl::storage_error);
}
