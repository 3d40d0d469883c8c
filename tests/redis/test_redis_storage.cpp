// tests/redis/test_redis_storage.cpp
// The Redis storage against a private redis-server: the storage contract (every
// algorithm, by name and as a static type, on the server's clock), exactness under
// threads and two processes, pipelined batches, NOSCRIPT recovery, a TTL on every
// key, hash-tagged keys, the limiter's multi-rule all-or-nothing, URLs and errors.
#include <catch2/catch.hpp>

#include "support/closed_port.hpp"
#include "support/redis_server.hpp"
#include "support/storage_contract.hpp"

#include <smart_ratelimit/limiter.hpp>
#include <smart_ratelimit/redis.hpp>
#if defined(SRL_TEST_WITH_ASIO)
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <smart_ratelimit/redis/async.hpp>
#endif

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace srl = smart_ratelimit;
namespace rds = smart_ratelimit::redis;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;
namespace contract = srl_test::contract;
using contract::all_combos;
using contract::dynamic_combos;

namespace {

srl_test::redis_server& server() {
    static srl_test::redis_server s;
    return s;
}

std::string unique_prefix(const char* what) {
    static std::atomic<int> n{0};
    return std::string("test:") + what + ":" + std::to_string(::getpid()) + ":" +
           std::to_string(n++) + ":";
}

template <class A>
rds::basic_redis_storage<A> make_storage(const char* what, rds::on_error e = rds::on_error::raise) {
    auto o = rds::redis_options_from_url(server().url(), 2000ms, 2000ms, 4);
    o.prefix = unique_prefix(what);
    o.errors = e;
    return rds::basic_redis_storage<A>(o);
}

long long command_int(redisContext* c, const char* fmt, const char* arg) {
    auto* r = static_cast<redisReply*>(redisCommand(c, fmt, arg));
    REQUIRE(r != nullptr);
    const long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1000;
    freeReplyObject(r);
    return v;
}

bool key_exists(const std::string& key) {
    redisContext* c = server().connect();
    REQUIRE(c != nullptr);
    const bool e = command_int(c, "EXISTS %s", key.c_str()) == 1;
    redisFree(c);
    return e;
}

// Every key under `prefix` (SCAN) with its TTL in ms.
std::vector<std::pair<std::string, long long>> keys_with_ttl(const std::string& prefix) {
    redisContext* c = server().connect();
    REQUIRE(c != nullptr);
    std::vector<std::pair<std::string, long long>> out;
    std::string cursor = "0";
    const std::string match = prefix + "*";
    do {
        auto* r = static_cast<redisReply*>(
            redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor.c_str(), match.c_str()));
        REQUIRE(r != nullptr);
        REQUIRE(r->type == REDIS_REPLY_ARRAY);
        cursor.assign(r->element[0]->str, r->element[0]->len);
        for (std::size_t i = 0; i < r->element[1]->elements; ++i) {
            std::string k(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
            out.emplace_back(k, command_int(c, "PTTL %s", k.c_str()));
        }
        freeReplyObject(r);
    } while (cursor != "0");
    redisFree(c);
    return out;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE(
    "redis: an algorithm admits exactly its limit, then denies with a finite wait",
    "[redis][storage][contract]", all_combos) {
    auto s = make_storage<typename TestType::algorithm_type>("limit");
    contract::admits_exactly_its_limit<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("redis: a key over a lowered limit is denied", "[redis][storage][contract]",
                        all_combos) {
    auto s = make_storage<typename TestType::algorithm_type>("lowered");
    contract::lowered_limit_denies_a_full_key<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE(
    "redis: cost counts several units and a cost above the limit is never retryable",
    "[redis][storage][contract]", all_combos) {
    auto s = make_storage<typename TestType::algorithm_type>("cost");
    contract::cost_counts_several_units<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("redis: keys are independent", "[redis][storage][contract]", all_combos) {
    auto s = make_storage<typename TestType::algorithm_type>("indep");
    contract::keys_are_independent<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("redis: peek decides without consuming and release gives units back",
                        "[redis][storage][contract]", all_combos) {
    auto s = make_storage<typename TestType::algorithm_type>("peek");
    contract::peek_and_release<TestType>(
        s, [&](const std::string& key, const auto& a) { return key_exists(s.redis_key(key, a)); });
}

TEMPLATE_LIST_TEST_CASE("redis: count plus remaining is the limit on every decision",
                        "[redis][storage][contract]", all_combos) {
    auto s = make_storage<typename TestType::algorithm_type>("sum");
    contract::count_plus_remaining_is_the_limit<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("redis: the largest limits and periods do not overflow",
                        "[redis][storage][contract]", all_combos) {
    auto s = make_storage<typename TestType::algorithm_type>("large");
    contract::largest_limits_do_not_overflow<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("redis: waiting retry_after on the server's clock is enough",
                        "[redis][storage][contract]", dynamic_combos) {
    auto s = make_storage<srl::any_algorithm>("wait");
    contract::waiting_retry_after_is_enough<TestType>(s);
}

TEMPLATE_LIST_TEST_CASE("redis: eight threads on one key at limit 10 admit exactly 10",
                        "[redis][storage][concurrency]", dynamic_combos) {
    auto s = make_storage<srl::any_algorithm>("threads");
    contract::eight_threads_admit_exactly_ten<TestType>(s, 5);
}

TEST_CASE("redis: two processes sharing one Redis never over-admit together",
          "[redis][storage][concurrency]") {
    const std::string prefix = unique_prefix("procs");
    const std::string url = server().url();
    const auto a = srl::any_algorithm("sliding_window", srl::rate{10, 1h});
    // Each child opens its own connections and reports how many it got admitted as its
    // exit status.
    std::vector<pid_t> kids;
    for (int p = 0; p < 2; ++p) {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int got = 0;
            try {
                auto o = rds::redis_options_from_url(url, 2000ms, 2000ms, 2);
                o.prefix = prefix;
                o.errors = rds::on_error::raise;
                rds::redis_storage s(o);
                for (int i = 0; i < 15; ++i)
                    if (s.acquire("shared", a, 0ns, 1).allowed) ++got;
            } catch (...) {
                ::_exit(100);
            }
            ::_exit(got);
        }
        kids.push_back(pid);
    }
    int total = 0;
    for (const pid_t k : kids) {
        int st = 0;
        REQUIRE(::waitpid(k, &st, 0) == k);
        REQUIRE(WIFEXITED(st));
        REQUIRE(WEXITSTATUS(st) != 100);
        total += WEXITSTATUS(st);
    }
    CHECK(total == 10);
}

TEST_CASE("redis: a pipelined batch decides in order and exactly", "[redis][storage][pipeline]") {
    auto s = make_storage<srl::any_algorithm>("batch");
    const srl::any_algorithm fw("fixed_window", srl::rate{10, 1h});
    const srl::any_algorithm tb("token_bucket", srl::rate{5, 1h});
    std::vector<rds::redis_storage::request> reqs;
    for (int i = 0; i < 30; ++i) reqs.push_back({"a", &fw, 1, rds::op::acquire});
    for (int i = 0; i < 10; ++i) reqs.push_back({"b", &tb, 1, rds::op::acquire});
    reqs.push_back({"a", &fw, 1, rds::op::peek});
    std::vector<srl::outcome> out(reqs.size());
    s.acquire_many(reqs, out);
    for (int i = 0; i < 30; ++i) CHECK(out[static_cast<std::size_t>(i)].allowed == (i < 10));
    for (int i = 0; i < 10; ++i) CHECK(out[30 + static_cast<std::size_t>(i)].allowed == (i < 5));
    CHECK_FALSE(out.back().allowed);
    CHECK(s.stats().decisions == reqs.size());
}

TEST_CASE("redis: SCRIPT FLUSH in the middle of a run is recovered transparently",
          "[redis][storage][noscript]") {
    auto s = make_storage<srl::any_algorithm>("noscript");
    const srl::any_algorithm a("fixed_window", srl::rate{6, 1h});
    CHECK(s.acquire("k", a, 0ns, 1).allowed);
    CHECK(s.acquire("k", a, 0ns, 1).allowed);
    redisContext* c = server().connect();
    REQUIRE(c != nullptr);
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    CHECK(s.acquire("k", a, 0ns, 1).allowed);
    CHECK(s.stats().noscript_retries == 1);
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    std::vector<rds::redis_storage::request> reqs(4, {"k", &a, 1, rds::op::acquire});
    std::vector<srl::outcome> out(4);
    s.acquire_many(reqs, out);
    CHECK(out[0].allowed);
    CHECK(out[1].allowed);
    CHECK(out[2].allowed);
    CHECK_FALSE(out[3].allowed);
    CHECK(s.stats().noscript_retries == 5);
    CHECK(s.stats().errors == 0);
    redisFree(c);
}

TEST_CASE("redis: no key is left without a TTL after a run", "[redis][storage][ttl]") {
    auto s = make_storage<srl::any_algorithm>("ttl");
    for (const auto name : srl::any_algorithm::names) {
        const srl::any_algorithm a(name, srl::rate{3, 1min});
        for (int i = 0; i < 5; ++i) s.acquire("k" + std::to_string(i % 2), a, 0ns, 1);
        s.release("k0", a, 0ns, 1);
        s.peek("k1", a, 0ns, 1);
        s.acquire("k0", a, 0ns, 2);
    }
    const auto keys = keys_with_ttl(s.options().prefix);
    CHECK(keys.size() >= 10);
    for (const auto& [k, ttl] : keys) {
        INFO(k);
        CHECK(ttl > 0);
        CHECK(ttl <= 2 * 60 * 1000 + 2000);
    }
}

TEST_CASE("redis: every key of one decision carries the same hash tag",
          "[redis][storage][cluster]") {
    auto s = make_storage<srl::any_algorithm>("tag");
    const srl::any_algorithm sw("sliding_window", srl::rate{3, 1min});
    s.acquire("rule:login:ip:203.0.113.5", sw, 0ns, 1);
    const auto keys = keys_with_ttl(s.options().prefix);
    REQUIRE(keys.size() == 3);  // the log, its totals and its index
    for (const auto& [k, ttl] : keys) {
        CHECK(k.find("{rule:login:ip:203.0.113.5}") == s.options().prefix.size());
    }
    CHECK(s.redis_key("x", sw) == s.options().prefix + "{x}:sw");
}

TEST_CASE("redis: a limiter's rules consume quota only when all of them pass", "[redis][limiter]") {
    struct key_of {
        std::string_view operator()(std::string_view s) const { return s; }
    };
    auto s = make_storage<srl::any_algorithm>("limiter");
    srl::limiter<key_of, rds::redis_storage> lim(
        key_of{},
        std::vector<srl::rule_config>{{"burst", "3/h", "token_bucket"},
                                      {"hourly", "5/h", "sliding_window"}},
        {}, s);
    int allowed = 0;
    for (int i = 0; i < 6; ++i) allowed += lim.check_key("user:1").allowed() ? 1 : 0;
    CHECK(allowed == 3);
    // The hourly rule spent only what passed both rules.
    const srl::any_algorithm hourly("sliding_window", srl::rate{5, 1h});
    const auto p = s.peek(srl::rule_key("hourly", "user:1"), hourly, 0ns, 1);
    CHECK(p.allowed);
    CHECK(p.count == 4);  // 3 spent + this one: peek reports what an acquire would
}

TEST_CASE("redis: URLs are parsed and bad ones are named", "[redis][url]") {
    const auto u = rds::parse_redis_url("redis://:s3cret@cache.internal:6380/2");
    CHECK(u.host == "cache.internal");
    CHECK(u.port == 6380);
    CHECK(u.password == "s3cret");
    CHECK(u.db == 2);
    CHECK(u.redacted() == "redis://:***@cache.internal:6380/2");
    CHECK(rds::parse_redis_url("redis://localhost").port == 6379);
    CHECK(rds::parse_redis_url("redis://[::1]:7000").host == "::1");
    for (const char* bad : {"http://x", "redis://", "redis://h:0", "redis://h:99999",
                            "redis://h:12x", "redis://h/db", "redis://:pw@:1"}) {
        INFO(bad);
        CHECK_THROWS_AS(rds::parse_redis_url(bad), srl::config_error);
    }
    try {
        rds::parse_redis_url("redis://:topsecret@h:abc");
        FAIL("no error");
    } catch (const srl::config_error& e) {
        CHECK(std::string(e.what()).find("topsecret") == std::string::npos);
        CHECK(std::string(e.what()).find("redis://:***@h:abc") != std::string::npos);
    }
    auto o = rds::redis_options_from_url(server().url());
    o.prefix = "bad{";
    CHECK_THROWS_AS(rds::redis_storage(o), srl::config_error);
}

TEST_CASE("redis: an unreachable server is a counted failure answered by the on_error setting",
          "[redis][errors]") {
    const srl_test::closed_port closed;  // nothing listens there
    auto o = rds::redis_options_from_url("redis://" + closed.address(), 500ms, 500ms, 2);
    const srl::any_algorithm a("fixed_window", srl::rate{3, 1h});
    o.errors = rds::on_error::degrade;
    rds::redis_storage degrading(o);
    const auto d = degrading.acquire("k", a, 0ns, 1);
    CHECK(d.degraded);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after > 0ns);
    CHECK(degrading.peek("k", a, 0ns, 1).degraded);
    CHECK(degrading.stats().errors == 2);
    o.errors = rds::on_error::raise;
    rds::redis_storage raising(o);
    CHECK_THROWS_AS(raising.acquire("k", a, 0ns, 1), srl::storage_error);
    CHECK_THROWS_AS(raising.load_scripts(), srl::storage_error);
}

TEST_CASE("redis: the URL's database is selected and a wrong password is a named error",
          "[redis][url]") {
    redisContext* c = server().connect();
    REQUIRE(c != nullptr);
    const srl::any_algorithm a("fixed_window", srl::rate{3, 1h});
    // Database 3, selected from the URL: the key lands there, not in database 0.
    auto o = rds::redis_options_from_url(server().url() + "/3");
    o.prefix = unique_prefix("db");
    rds::redis_storage s(o);
    REQUIRE(s.acquire("k", a, 0ns, 1).allowed);
    CHECK_FALSE(key_exists(s.redis_key("k", a)));
    freeReplyObject(redisCommand(c, "SELECT 3"));
    CHECK(command_int(c, "EXISTS %s", s.redis_key("k", a).c_str()) == 1);
    redisFree(c);
    // A wrong password is an error that names the server.
    auto bad =
        rds::redis_options_from_url("redis://:wrong@127.0.0.1:" + std::to_string(server().port()));
    bad.errors = rds::on_error::raise;
    try {
        rds::redis_storage(bad).acquire("k", a, 0ns, 1);
        FAIL("no error");
    } catch (const srl::storage_error& e) {
        CHECK(std::string(e.what()).find("AUTH") != std::string::npos);
        CHECK(std::string(e.what()).find("wrong") == std::string::npos);
    }
}

#if defined(SRL_TEST_WITH_ASIO)
TEST_CASE("redis: async_acquire runs on a thread pool and completes with the outcome",
          "[redis][async]") {
    auto s = make_storage<srl::any_algorithm>("async");
    const srl::any_algorithm a("fixed_window", srl::rate{2, 1h});
    boost::asio::thread_pool pool(2);
    auto f1 = rds::async_acquire(s, "k", a, 1, pool.get_executor(), boost::asio::use_future);
    auto f2 = rds::async_acquire(s, "k", a, 1, pool.get_executor(), boost::asio::use_future);
    auto f3 = rds::async_acquire(s, "k", a, 1, pool.get_executor(), boost::asio::use_future);
    const int allowed =
        (f1.get().allowed ? 1 : 0) + (f2.get().allowed ? 1 : 0) + (f3.get().allowed ? 1 : 0);
    CHECK(allowed == 2);
    pool.join();
}
#endif
