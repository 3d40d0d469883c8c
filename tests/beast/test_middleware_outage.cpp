// tests/beast/test_middleware_outage.cpp
// The HTTP answers through a store outage, as a client reads them off the wire:
// before it, the abuser's 429 and everyone's rate-limit fields; during it (the
// fixture's flaky storage throwing), a 503 with Retry-After and no RateLimit or
// X-RateLimit field under fail_closed, the handler's 200 without them under
// fail_open, and never a 429 — not even for the client that was over its limit;
// after it, the same limits as before, with no quota spent by the outage.
#include "middleware_fixture.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace srl_test;

namespace {

bool has(const std::string& text, std::string_view what) {
    return text.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE(
    "through a store outage: 503 with Retry-After (fail_closed) or the handler's 200 (fail_open), "
    "never a 429 nor rate-limit fields; the limits are intact afterwards",
    "[beast][middleware][degraded][outage]") {
    for (const auto policy : {srl::failure_policy::fail_closed, srl::failure_policy::fail_open}) {
        INFO(srl::to_string(policy));
        const bool open = policy == srl::failure_policy::fail_open;
        recording_sink sink;
        flaky_storage storage;
        auto failing = storage.failing;
        srl::limiter_options lo;
        lo.on_store_failure = policy;
        auto lim = make_limiter(mw::request_key::ip(), {{"login", "5/m"}}, sink, minute_clock(),
                                std::move(storage), lo);
        mw::middleware_options mo;
        mo.log_events = true;
        mw::middleware<test_limiter> m(mo);
        m.add(*lim, {"/api/login", {http::verb::post}});
        int calls = 0;
        auto req = make_request(http::verb::post, "/api/login");
        const auto abuser = addr("203.0.113.66");
        const auto innocent = addr("198.51.100.7");

        // Healthy: the abuser goes over its limit (429), the innocent is well under.
        for (int i = 0; i < 5; ++i)
            CHECK(has(serialize(m.handle(req, abuser, ok_handler{&calls})), "HTTP/1.1 200"));
        const auto over = serialize(m.handle(req, abuser, ok_handler{&calls}));
        CHECK(over.rfind("HTTP/1.1 429", 0) == 0);
        const auto first = serialize(m.handle(req, innocent, ok_handler{&calls}));
        CHECK(first.rfind("HTTP/1.1 200", 0) == 0);
        CHECK(has(first, "RateLimit: \"login\";r=4;"));
        CHECK(calls == 6);

        // The outage: everyone, the abuser included, gets the policy's answer.
        failing->store(true);
        for (int i = 0; i < 10; ++i)
            for (const auto& peer : {abuser, innocent}) {
                const int before = calls;
                const auto res = serialize(m.handle(req, peer, ok_handler{&calls}));
                INFO(res);
                CHECK_FALSE(has(res, "HTTP/1.1 429"));
                CHECK_FALSE(has(res, "RateLimit"));  // nor RateLimit-Policy, nor X-RateLimit-*
                if (open) {
                    CHECK(res.rfind("HTTP/1.1 200", 0) == 0);
                    CHECK(calls == before + 1);
                } else {
                    CHECK(res.rfind("HTTP/1.1 503", 0) == 0);
                    CHECK(has(res, "Retry-After: "));
                    CHECK(calls == before);
                }
            }
        CHECK(m.stats().blocked == 1);
        CHECK((open ? m.stats().degraded_open : m.stats().degraded_closed) == 20);

        // Back: the abuser is still over its limit; the innocent's count did not move.
        failing->store(false);
        CHECK(serialize(m.handle(req, abuser, ok_handler{&calls})).rfind("HTTP/1.1 429", 0) == 0);
        const auto after = serialize(m.handle(req, innocent, ok_handler{&calls}));
        CHECK(after.rfind("HTTP/1.1 200", 0) == 0);
        CHECK(has(after, "RateLimit: \"login\";r=3;"));
        CHECK(m.stats().blocked == 2);

        // The log: the degraded requests are allowed (not denials), only the abuser's
        // two real 429s are denied.
        int degraded = 0, denied = 0;
        for (const auto& e : sink.events()) {
            if (e.outcome == srl::outcome_kind::degraded) {
                ++degraded;
                CHECK(e.allowed);
            }
            if (!e.allowed) {
                ++denied;
                CHECK(e.key == "rule:login:ip:203.0.113.66");
            }
        }
        CHECK(degraded == 20);
        CHECK(denied == 2);
    }
}
