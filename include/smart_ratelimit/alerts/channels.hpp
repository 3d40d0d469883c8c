// smart_ratelimit/alerts/channels.hpp
// The two alert channels as policies: a `mail_sender` delivers one e-mail, a
// `webhook_sender` POSTs one JSON body. Concrete senders live in adapters
// (smtp/curl_mailer.hpp over libcurl, beast/webhook_client.hpp over Beast); the
// null ones here report "not configured". Standard headers only.
#pragma once

#include <concepts>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit {

/// The outcome of one delivery attempt; `error` says why when `ok` is false.
struct send_status {
    bool ok = false;
    std::string error;

    static send_status success() { return {true, {}}; }
    static send_status failure(std::string why) { return {false, std::move(why)}; }
};

/// One e-mail. `body` lines end in "\n"; the sender turns them into CRLF and
/// builds the headers. Header values are sanitized by the sender.
struct mail {
    std::string from;
    std::vector<std::string> to;
    std::string subject;
    std::string body;
};

/// mail_sender: delivers an e-mail.
///
/// | expression   | type          | meaning                                                  |
/// |--------------|---------------|----------------------------------------------------------|
/// | `m.send(msg)`| `send_status` | delivers `msg` (a `const mail&`) within the sender's timeout; never throws |
///
/// Thread safety: `send` may be called from one thread at a time per sender.
template <class M>
concept mail_sender = requires(M& m, const mail& msg) {
    { m.send(msg) } -> std::same_as<send_status>;
};

/// webhook_sender: POSTs a JSON document.
///
/// | expression          | type          | meaning                                            |
/// |---------------------|---------------|----------------------------------------------------|
/// | `w.post(url, body)` | `send_status` | POSTs `body` (application/json) to `url` within the sender's timeout; only a 2xx status is a delivery; never throws |
///
/// Thread safety: `post` may be called from one thread at a time per sender.
template <class W>
concept webhook_sender = requires(W& w, std::string_view url, std::string_view body) {
    { w.post(url, body) } -> std::same_as<send_status>;
};

/// A mail_sender for builds without the SMTP adapter: every send fails, saying so.
struct no_mail_sender {
    send_status send(const mail&) const {
        return send_status::failure("e-mail is not configured (no SMTP sender)");
    }
};

/// A webhook_sender for builds without the Beast adapter: every post fails, saying so.
struct no_webhook_sender {
    send_status post(std::string_view, std::string_view) const {
        return send_status::failure("webhooks are not configured (no HTTP client)");
    }
};

static_assert(mail_sender<no_mail_sender>);
static_assert(webhook_sender<no_webhook_sender>);

}  // namespace smart_ratelimit
