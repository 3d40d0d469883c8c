// smart_ratelimit/alerts/send.hpp
// send_offender_alerts: finds the offenders at or over the threshold,
// drops those alerted within the cool-down, sends one e-mail and then one webhook,
// and reports every channel in an `alert_result`. It never throws: failures of
// the source, a channel or the alert log become values in the result.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <smart_ratelimit/alerts/alert_log.hpp>
#include <smart_ratelimit/alerts/channels.hpp>
#include <smart_ratelimit/alerts/message.hpp>
#include <smart_ratelimit/analytics/functions.hpp>
#include <smart_ratelimit/analytics/results.hpp>
#include <smart_ratelimit/settings.hpp>

namespace smart_ratelimit {

/// What to check and where to send. `threshold <= 0` disables alerting.
/// An empty `email_to` skips e-mail, an empty `webhook_url` skips the webhook.
struct alert_request {
    std::int64_t threshold = 0;
    int days = 1;
    int limit = 100;
    std::vector<std::string> email_to;
    std::string webhook_url;
    std::string from = "webmaster@localhost";
    std::chrono::minutes cooldown{0};  // 0: no cool-down
    std::optional<event_time> now;     // default: the system clock
};

/// The request the settings describe (threshold, recipients, webhook, from, cool-down).
inline alert_request alert_request_from(const settings& s) {
    alert_request r;
    r.threshold = s.alert_threshold;
    r.email_to = s.alert_emails;
    r.webhook_url = s.alert_webhook;
    r.from = s.default_from_email;
    r.cooldown = std::chrono::minutes(s.alert_cooldown_minutes);
    return r;
}

/// One channel's outcome: `{"sent": true, "to": [...]}`, `{"sent": true, "url": ...}`
/// or `{"sent": false, "error": "..."}`.
struct channel_result {
    std::string channel;  // "email" or "webhook"
    bool sent = false;
    std::vector<std::string> to;
    std::string url;
    std::string error;
};

/// What send_offender_alerts did. `offenders` are the ones alerted (after the
/// cool-down); `suppressed` counts those skipped because of it. `error` is set when
/// the offenders could not be found (e.g. the database is down).
struct alert_result {
    bool enabled = false;
    std::int64_t threshold = 0;
    int days = 1;
    std::vector<offender> offenders;
    std::vector<channel_result> channels;  // e-mail first, then webhook
    std::size_t suppressed = 0;
    bool cooldown = false;
    std::string error;

    /// True when nothing failed: no source error and every attempted channel sent.
    bool ok() const noexcept {
        if (!error.empty()) return false;
        for (const auto& c : channels)
            if (!c.sent) return false;
        return true;
    }
};

namespace detail {
inline std::string describe_exception(std::exception_ptr p) {
    try {
        std::rethrow_exception(p);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown error";
    }
}
}  // namespace detail

/// The dispatcher: its three policies are the e-mail sender, the webhook sender
/// and the alert log (cool-down memory).
/// Thread safety: as its policies; `deliver` and `send` touch no other state.
template <mail_sender Mailer = no_mail_sender, webhook_sender Webhook = no_webhook_sender,
          alert_log Log = no_alert_log>
class alert_dispatcher {
public:
    alert_dispatcher() = default;  // value policies only
    explicit alert_dispatcher(Mailer m, Webhook w = {}, Log l = {})
        : mailer_(static_cast<Mailer&&>(m)),
          webhook_(static_cast<Webhook&&>(w)),
          log_(static_cast<Log&&>(l)) {}

    Mailer& mail_sender_policy() noexcept { return mailer_; }
    Webhook& webhook_sender_policy() noexcept { return webhook_; }
    Log& alert_log_policy() noexcept { return log_; }

    /// Finds the alertable offenders in `source` (an event range, or a store with a
    /// find_alertable_offenders overload) and delivers them. Never throws.
    template <class Source>
    alert_result send(Source&& source, const alert_request& req) noexcept {
        if (req.threshold <= 0) return alert_result{};
        std::vector<offender> offenders;
        try {
            const event_time now = req.now ? *req.now : event_clock_now();
            offenders = find_alertable_offenders(std::forward<Source>(source), req.threshold,
                                                 req.days, req.limit, now);
        } catch (...) {
            alert_result r = enabled_result(req);
            r.error = detail::describe_exception(std::current_exception());
            return r;
        }
        return deliver(std::move(offenders), req);
    }

    /// Delivers an already computed offender list (the caller applied threshold and
    /// limit). Never throws.
    alert_result deliver(std::vector<offender> offenders, const alert_request& req) noexcept {
        if (req.threshold <= 0) return alert_result{};
        alert_result r = enabled_result(req);
        const event_time now = req.now ? *req.now : event_clock_now();
        struct claimed {
            std::string key;
            std::optional<event_time> previous;
        };
        std::vector<claimed> claims;  // won by this run, released unless sent
        try {
            if (req.cooldown.count() > 0) {
                r.cooldown = true;
                const event_time since =
                    now - std::chrono::duration_cast<std::chrono::microseconds>(req.cooldown);
                std::vector<offender> fresh;
                for (auto& o : offenders) {
                    bool alert = false;
                    if constexpr (claiming_alert_log<Log>) {
                        // Claimed before sending: of several nodes running at once,
                        // exactly one wins each key.
                        const alert_claim c = log_.claim(o.key, now, since);
                        alert = c.won;
                        if (c.won) claims.push_back({o.key, c.previous});
                    } else {
                        const auto last = log_.last_alerted(o.key);
                        alert = !last || *last < since;
                    }
                    if (alert)
                        fresh.push_back(std::move(o));
                    else
                        ++r.suppressed;
                }
                offenders = std::move(fresh);
            }
            r.offenders = std::move(offenders);
            if (r.offenders.empty()) return r;
            bool any_sent = false;
            if (!req.email_to.empty()) {
                channel_result c{"email", false, {}, {}, {}};
                send_status st = guarded([&] {
                    return mailer_.send(mail{req.from, req.email_to,
                                             alert_subject(r.offenders.size()),
                                             alert_body(r.offenders, req.threshold, req.days)});
                });
                c.sent = st.ok;
                if (st.ok)
                    c.to = req.email_to;
                else
                    c.error = std::move(st.error);
                any_sent = any_sent || st.ok;
                r.channels.push_back(std::move(c));
            }
            if (!req.webhook_url.empty()) {
                channel_result c{"webhook", false, {}, {}, {}};
                send_status st = guarded([&] {
                    return webhook_.post(
                        req.webhook_url,
                        alert_webhook_payload(r.offenders, req.threshold, req.days));
                });
                c.sent = st.ok;
                if (st.ok)
                    c.url = req.webhook_url;
                else
                    c.error = std::move(st.error);
                any_sent = any_sent || st.ok;
                r.channels.push_back(std::move(c));
            }
            if (any_sent && r.cooldown) {
                if constexpr (!claiming_alert_log<Log>)
                    for (const auto& o : r.offenders) log_.record(o.key, now);
                claims.clear();  // recorded when claimed
            }
        } catch (...) {
            r.error = detail::describe_exception(std::current_exception());
        }
        // Nothing went out: give the claims back, so the next run tries again.
        if constexpr (claiming_alert_log<Log>) {
            for (const auto& c : claims) {
                try {
                    log_.release(c.key, now, c.previous);
                } catch (...) {
                    if (r.error.empty())
                        r.error = detail::describe_exception(std::current_exception());
                }
            }
        }
        return r;
    }

private:
    static alert_result enabled_result(const alert_request& req) {
        alert_result r;
        r.enabled = true;
        r.threshold = req.threshold;
        r.days = req.days;
        return r;
    }

    template <class F>
    static send_status guarded(F&& f) noexcept {
        try {
            return f();
        } catch (...) {
            return send_status::failure(detail::describe_exception(std::current_exception()));
        }
    }

    [[no_unique_address]] Mailer mailer_;
    [[no_unique_address]] Webhook webhook_;
    [[no_unique_address]] Log log_;
};

/// The original library's function: finds offenders in `source` with `blocked_count >=
/// req.threshold` over `req.days` and alerts them by e-mail, then webhook.
/// Never throws. Disabled (threshold <= 0): `{"enabled": false, "offenders": [], "channels": {}}`.
template <class Source, mail_sender Mailer = no_mail_sender,
          webhook_sender Webhook = no_webhook_sender, alert_log Log = no_alert_log>
alert_result send_offender_alerts(Source&& source, const alert_request& req, Mailer& mailer,
                                  Webhook& webhook, Log& log) noexcept {
    alert_dispatcher<Mailer&, Webhook&, Log&> d(mailer, webhook, log);
    return d.send(std::forward<Source>(source), req);
}

/// As above, without a cool-down memory.
template <class Source, mail_sender Mailer, webhook_sender Webhook>
alert_result send_offender_alerts(Source&& source, const alert_request& req, Mailer& mailer,
                                  Webhook& webhook) noexcept {
    no_alert_log log;
    return send_offender_alerts(std::forward<Source>(source), req, mailer, webhook, log);
}

/// The result as JSON, keys in the original library's order. Disabled:
/// `{"enabled": false, "offenders": [], "channels": {}}`. "suppressed" appears when a
/// cool-down is configured, "error" when the offenders could not be found.
inline std::string to_json(const alert_result& r) {
    std::string out;
    if (!r.enabled) return "{\"enabled\": false, \"offenders\": [], \"channels\": {}}";
    out = "{\"enabled\": true, \"threshold\": " + std::to_string(r.threshold) +
          ", \"days\": " + std::to_string(r.days) + ", \"offenders\": [";
    for (std::size_t i = 0; i < r.offenders.size(); ++i) {
        if (i) out += ", ";
        out += "{\"key\": ";
        detail::append_json_string(out, r.offenders[i].key);
        out += ", \"blocked_count\": " + std::to_string(r.offenders[i].blocked_count) + "}";
    }
    out += "], \"channels\": {";
    for (std::size_t i = 0; i < r.channels.size(); ++i) {
        const auto& c = r.channels[i];
        if (i) out += ", ";
        detail::append_json_string(out, c.channel);
        out += ": {\"sent\": ";
        if (!c.sent) {
            out += "false, \"error\": ";
            detail::append_json_string(out, c.error);
        } else if (c.channel == "email") {
            out += "true, \"to\": [";
            for (std::size_t j = 0; j < c.to.size(); ++j) {
                if (j) out += ", ";
                detail::append_json_string(out, c.to[j]);
            }
            out += "]";
        } else {
            out += "true, \"url\": ";
            detail::append_json_string(out, c.url);
        }
        out += "}";
    }
    out += "}";
    if (r.cooldown) out += ", \"suppressed\": " + std::to_string(r.suppressed);
    if (!r.error.empty()) {
        out += ", \"error\": ";
        detail::append_json_string(out, r.error);
    }
    out += "}";
    return out;
}

}  // namespace smart_ratelimit
