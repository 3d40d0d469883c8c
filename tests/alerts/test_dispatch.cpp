// tests/alerts/test_dispatch.cpp
// send_offender_alerts' decisions, with recording channel policies (the delivery
// itself is tested against real receivers in test_delivery.cpp): disabled,
// threshold boundaries, the limit applied before the threshold, the window, the
// channel order, the cool-down, and that nothing ever throws.
#include <catch2/catch.hpp>

#include <smart_ratelimit/alerts.hpp>

#include <latch>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <string>
#include <vector>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

namespace {

const srl::event_time now =
    srl::event_time(std::chrono::sys_days(std::chrono::year(2026) / 3 / 14).time_since_epoch());

/// Records what it was asked to send; fails on demand.
struct recording_channels {
    std::vector<std::string> calls;  // "email" / "webhook" in call order
    std::vector<srl::mail> mails;
    std::vector<std::pair<std::string, std::string>> posts;
    bool fail_mail = false;
    bool fail_post = false;
    bool throw_mail = false;
};

struct recording_mailer {
    recording_channels* ch;
    srl::send_status send(const srl::mail& m) {
        ch->calls.push_back("email");
        if (ch->throw_mail) throw std::runtime_error("mailer exploded");
        ch->mails.push_back(m);
        return ch->fail_mail ? srl::send_status::failure("smtp down") : srl::send_status::success();
    }
};

struct recording_webhook {
    recording_channels* ch;
    srl::send_status post(std::string_view url, std::string_view body) {
        ch->calls.push_back("webhook");
        ch->posts.emplace_back(url, body);
        return ch->fail_post ? srl::send_status::failure("hook down") : srl::send_status::success();
    }
};

static_assert(srl::mail_sender<recording_mailer>);
static_assert(srl::webhook_sender<recording_webhook>);
static_assert(!srl::mail_sender<recording_webhook>);
static_assert(!srl::webhook_sender<recording_mailer>);
static_assert(!srl::alert_log<recording_mailer>);

void add_blocked(std::vector<srl::event>& ev, const std::string& key, int n,
                 srl::event_time at = now - 1h) {
    for (int i = 0; i < n; ++i) ev.push_back(srl::make_event(at, key, "/", "GET", false, 2, 1));
}

srl::alert_request request(std::int64_t threshold) {
    srl::alert_request r;
    r.threshold = threshold;
    r.email_to = {"ops@example.com"};
    r.webhook_url = "http://127.0.0.1:9/hook";
    r.from = "alerts@example.org";
    r.now = now;
    return r;
}

std::vector<std::string> keys_of(const srl::alert_result& r) {
    std::vector<std::string> out;
    for (const auto& o : r.offenders) out.push_back(o.key);
    return out;
}

}  // namespace

TEST_CASE("no threshold or threshold 0 disables alerting and sends nothing", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:1", 50);
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    for (const std::int64_t t : {0, -5}) {
        const auto r = srl::send_offender_alerts(ev, request(t), m, w);
        CHECK_FALSE(r.enabled);
        CHECK(r.offenders.empty());
        CHECK(r.channels.empty());
    }
    const auto from_defaults = srl::alert_request_from(srl::settings{});
    CHECK(from_defaults.threshold == 0);
    CHECK_FALSE(srl::send_offender_alerts(ev, from_defaults, m, w).enabled);
    CHECK(ch.calls.empty());
}

TEST_CASE("the threshold is inclusive", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:at", 10);
    add_blocked(ev, "ip:below", 9);
    add_blocked(ev, "ip:above", 11);
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    const auto r = srl::send_offender_alerts(ev, request(10), m, w);
    CHECK(keys_of(r) == std::vector<std::string>{"ip:above", "ip:at"});
    CHECK(srl::send_offender_alerts(ev, request(11), m, w).offenders.size() == 1);
    CHECK(srl::send_offender_alerts(ev, request(12), m, w).offenders.empty());
}

TEST_CASE("the limit is applied before the threshold", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:a", 30);
    add_blocked(ev, "ip:b", 20);
    add_blocked(ev, "ip:c", 10);
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    auto req = request(5);
    req.limit = 2;
    CHECK(keys_of(srl::send_offender_alerts(ev, req, m, w)) ==
          std::vector<std::string>{"ip:a", "ip:b"});
    req.limit = 0;
    CHECK(srl::send_offender_alerts(ev, req, m, w).offenders.empty());
}

TEST_CASE("only blocked events inside the window count", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:old", 10, now - 25h);
    add_blocked(ev, "ip:edge", 5, now - 24h);
    for (int i = 0; i < 10; ++i)
        ev.push_back(srl::make_event(now - 1h, "ip:allowed", "/", "GET", true, 1, 10));
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    CHECK(keys_of(srl::send_offender_alerts(ev, request(5), m, w)) ==
          std::vector<std::string>{"ip:edge"});
    auto req = request(5);
    req.days = 2;
    CHECK(keys_of(srl::send_offender_alerts(ev, req, m, w)) ==
          std::vector<std::string>{"ip:old", "ip:edge"});
}

TEST_CASE("e-mail goes first, then the webhook, with the spec's texts", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:1", 7);
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    const auto r = srl::send_offender_alerts(ev, request(3), m, w);
    CHECK(r.ok());
    CHECK(ch.calls == std::vector<std::string>{"email", "webhook"});
    REQUIRE(ch.mails.size() == 1);
    CHECK(ch.mails[0].from == "alerts@example.org");
    CHECK(ch.mails[0].to == std::vector<std::string>{"ops@example.com"});
    CHECK(ch.mails[0].subject == "[smart-ratelimit] 1 offender(s) alert");
    CHECK(ch.mails[0].body ==
          "1 rate-limit offender(s) exceeded 3 blocked requests in the last 1 day(s):\n\nip:1: 7 "
          "blocked\n");
    REQUIRE(ch.posts.size() == 1);
    CHECK(ch.posts[0].first == "http://127.0.0.1:9/hook");
    CHECK(ch.posts[0].second ==
          "{\"threshold\": 3, \"days\": 1, \"offenders\": [{\"key\": \"ip:1\", \"blocked_count\": "
          "7}]}");
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].to == std::vector<std::string>{"ops@example.com"});
    CHECK(r.channels[1].url == "http://127.0.0.1:9/hook");
}

TEST_CASE("unconfigured channels are skipped, and no offenders sends nothing", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:1", 7);
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    auto req = request(3);
    req.email_to.clear();
    auto r = srl::send_offender_alerts(ev, req, m, w);
    CHECK(ch.calls == std::vector<std::string>{"webhook"});
    REQUIRE(r.channels.size() == 1);
    CHECK(r.channels[0].channel == "webhook");
    req.webhook_url.clear();
    r = srl::send_offender_alerts(ev, req, m, w);
    CHECK(r.channels.empty());
    CHECK(r.offenders.size() == 1);
    ch.calls.clear();
    CHECK(srl::send_offender_alerts(std::vector<srl::event>{}, request(1), m, w).channels.empty());
    CHECK(ch.calls.empty());
}

TEST_CASE("a failing or throwing channel is reported and the other still runs", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:1", 7);
    recording_channels ch;
    ch.throw_mail = true;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    const auto r = srl::send_offender_alerts(ev, request(3), m, w);
    REQUIRE(r.channels.size() == 2);
    CHECK_FALSE(r.channels[0].sent);
    CHECK(r.channels[0].error == "mailer exploded");
    CHECK(r.channels[1].sent);
    CHECK_FALSE(r.ok());
    ch.throw_mail = false;
    ch.fail_post = true;
    const auto r2 = srl::send_offender_alerts(ev, request(3), m, w);
    CHECK(r2.channels[0].sent);
    CHECK(r2.channels[1].error == "hook down");
}

TEST_CASE("the null senders say the channel is not configured", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:1", 7);
    srl::no_mail_sender m;
    srl::no_webhook_sender w;
    const auto r = srl::send_offender_alerts(ev, request(3), m, w);
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].error.find("not configured") != std::string::npos);
    CHECK(r.channels[1].error.find("not configured") != std::string::npos);
}

namespace {
/// A source whose lookup fails, as an unreachable database would.
struct broken_store {};
std::vector<srl::offender> find_alertable_offenders(const broken_store&, std::int64_t, int, int,
                                                    srl::event_time) {
    throw srl::storage_error("database is unreachable");
}
}  // namespace

TEST_CASE("a failing source is reported, never thrown", "[alerts]") {
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    const auto r = srl::send_offender_alerts(broken_store{}, request(3), m, w);
    CHECK(r.enabled);
    CHECK(r.error == "database is unreachable");
    CHECK_FALSE(r.ok());
    CHECK(ch.calls.empty());
    auto req = request(3);
    req.limit = -1;  // the analytics reject it; still no exception
    std::vector<srl::event> ev;
    CHECK_FALSE(srl::send_offender_alerts(ev, req, m, w).error.empty());
}

TEST_CASE("the cool-down suppresses keys alerted within N minutes", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:1", 7);
    add_blocked(ev, "ip:2", 5);
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    srl::memory_alert_log log;
    auto req = request(3);
    req.cooldown = 15min;

    auto r = srl::send_offender_alerts(ev, req, m, w, log);
    CHECK(keys_of(r) == std::vector<std::string>{"ip:1", "ip:2"});
    CHECK(log.last_alerted("ip:1") == now);

    req.now = now + 15min;  // still inside: alerted at exactly now - 15 min
    add_blocked(ev, "ip:3", 4);
    r = srl::send_offender_alerts(ev, req, m, w, log);
    CHECK(keys_of(r) == std::vector<std::string>{"ip:3"});
    CHECK(r.suppressed == 2);
    CHECK(ch.mails.back().subject == "[smart-ratelimit] 1 offender(s) alert");

    req.now = now + 15min + 1us;
    r = srl::send_offender_alerts(ev, req, m, w, log);
    CHECK(keys_of(r) == std::vector<std::string>{"ip:1", "ip:2"});
    CHECK(r.suppressed == 1);
}

TEST_CASE("a run where every channel failed is not remembered by the cool-down", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:1", 7);
    recording_channels ch;
    ch.fail_mail = true;
    ch.fail_post = true;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    srl::memory_alert_log log;
    auto req = request(3);
    req.cooldown = 60min;
    CHECK_FALSE(srl::send_offender_alerts(ev, req, m, w, log).ok());
    CHECK_FALSE(log.last_alerted("ip:1").has_value());
    ch.fail_post = false;
    CHECK(srl::send_offender_alerts(ev, req, m, w, log).channels[1].sent);
    CHECK(log.last_alerted("ip:1") == now);
}

TEST_CASE("a failed run gives its claims back: the earlier alert time stays", "[alerts]") {
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:1", 7);
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    srl::memory_alert_log log;
    auto req = request(3);
    req.cooldown = 60min;
    REQUIRE(srl::send_offender_alerts(ev, req, m, w, log).ok());
    ch.fail_mail = ch.fail_post = true;
    req.now = now + 2h;
    CHECK_FALSE(srl::send_offender_alerts(ev, req, m, w, log).ok());
    CHECK(log.last_alerted("ip:1") == now);  // not now + 2h: nothing went out
    ch.fail_post = false;
    CHECK(srl::send_offender_alerts(ev, req, m, w, log).channels[1].sent);
    CHECK(log.last_alerted("ip:1") == now + 2h);
}

TEST_CASE("runs sharing a claiming log at once alert each key once", "[alerts]") {
    std::vector<srl::event> ev;
    for (int k = 0; k < 60; ++k) add_blocked(ev, "ip:" + std::to_string(k), 3 + k % 5);
    constexpr int runs = 4;
    // Every run has looked at every key before any run sends or records: the worst
    // interleaving of runs that read and then write.
    struct gated_log {
        srl::memory_alert_log* inner;
        std::latch* gate;
        int looked = 0;
        void looked_at_one() {
            if (++looked == 60) gate->arrive_and_wait();
        }
        std::optional<srl::event_time> last_alerted(std::string_view k) {
            auto r = inner->last_alerted(k);
            looked_at_one();
            return r;
        }
        void record(std::string_view k, srl::event_time at) { inner->record(k, at); }
        srl::alert_claim claim(std::string_view k, srl::event_time at, srl::event_time since) {
            auto r = inner->claim(k, at, since);
            looked_at_one();
            return r;
        }
        void release(std::string_view k, srl::event_time at, std::optional<srl::event_time> p) {
            inner->release(k, at, p);
        }
    };
    srl::memory_alert_log shared;
    std::latch gate(runs);
    auto req = request(3);
    req.cooldown = 5min;
    req.limit = 100;
    std::vector<recording_channels> ch(runs);
    std::vector<std::thread> threads;
    for (int i = 0; i < runs; ++i)
        threads.emplace_back([&, i] {
            recording_mailer m{&ch[i]};
            recording_webhook w{&ch[i]};
            gated_log log{&shared, &gate};
            (void)srl::send_offender_alerts(ev, req, m, w, log);
        });
    for (auto& t : threads) t.join();
    std::multiset<std::string> alerted;
    for (const auto& c : ch)
        for (const auto& [url, body] : c.posts)
            for (int k = 0; k < 60; ++k)
                if (body.find("\"ip:" + std::to_string(k) + "\"") != std::string::npos)
                    alerted.insert("ip:" + std::to_string(k));
    CHECK(alerted.size() == 60);
    for (int k = 0; k < 60; ++k) CHECK(alerted.count("ip:" + std::to_string(k)) == 1);
}

TEST_CASE("a log that cannot claim still gets the cool-down by reading and recording", "[alerts]") {
    struct read_record_log {
        srl::memory_alert_log inner;
        std::optional<srl::event_time> last_alerted(std::string_view k) {
            return inner.last_alerted(k);
        }
        void record(std::string_view k, srl::event_time at) { inner.record(k, at); }
    };
    static_assert(srl::alert_log<read_record_log> && !srl::claiming_alert_log<read_record_log>);
    std::vector<srl::event> ev;
    add_blocked(ev, "ip:1", 7);
    recording_channels ch;
    recording_mailer m{&ch};
    recording_webhook w{&ch};
    read_record_log log;
    auto req = request(3);
    req.cooldown = 15min;
    CHECK(keys_of(srl::send_offender_alerts(ev, req, m, w, log)).size() == 1);
    CHECK(log.last_alerted("ip:1") == now);
    const auto again = srl::send_offender_alerts(ev, req, m, w, log);
    CHECK(again.offenders.empty());
    CHECK(again.suppressed == 1);
}

TEST_CASE("the dispatcher keeps its policies as members reachable by role", "[alerts]") {
    srl::alert_dispatcher<> d;
    static_assert(std::is_empty_v<srl::no_mail_sender>);
    CHECK(sizeof(d) == 1);
    (void)d.mail_sender_policy();
    (void)d.webhook_sender_policy();
    (void)d.alert_log_policy();
    std::vector<srl::event> ev;
    CHECK(d.send(ev, request(1)).channels.empty());
}

TEST_CASE("the request follows the settings", "[alerts][settings]") {
    srl::settings s;
    s.alert_threshold = 100;
    s.alert_emails = {"ops@example.com"};
    s.alert_webhook = "https://hooks.example.com/x";
    s.default_from_email = "rl@example.com";
    s.alert_cooldown_minutes = 30;
    const auto r = srl::alert_request_from(s);
    CHECK(r.threshold == 100);
    CHECK(r.days == 1);
    CHECK(r.limit == 100);
    CHECK(r.email_to == s.alert_emails);
    CHECK(r.webhook_url == s.alert_webhook);
    CHECK(r.from == "rl@example.com");
    CHECK(r.cooldown == 30min);
}
