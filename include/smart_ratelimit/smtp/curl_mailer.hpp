// smart_ratelimit/smtp/curl_mailer.hpp
// A mail_sender over libcurl's SMTP client: `smtp://` (STARTTLS when the server
// offers it, or always with `?starttls=required`) and `smtps://` (implicit TLS),
// optional AUTH from the URL's userinfo (`smtp://user:pass@host:587`), certificate
// and host name verified, one timeout for the whole exchange. Needs libcurl
// (target smart_ratelimit::smtp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <curl/curl.h>

#include <smart_ratelimit/alerts/channels.hpp>
#include <smart_ratelimit/settings.hpp>
#include <smart_ratelimit/smtp/message.hpp>

namespace smart_ratelimit::smtp {

/// How to reach the SMTP server.
struct smtp_options {
    std::string url{
        default_smtp_url};  // smtp://[user:pass@]host[:port][?starttls=required] or smtps://
    std::chrono::milliseconds timeout{5000};  // connect + whole exchange
    std::string ca_file;                      // PEM trust store; "" = the system's
};

/// The options the settings describe (RATELIMIT_SMTP_URL, RATELIMIT_ALERT_TIMEOUT_MS,
/// RATELIMIT_ALERT_CA_FILE).
inline smtp_options smtp_options_from(const settings& s) {
    return smtp_options{s.smtp_url, s.alert_timeout, s.alert_ca_file};
}

namespace detail {

inline bool curl_ready() noexcept {
    static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    return ok;
}

struct read_cursor {
    std::string_view data;
};

inline std::size_t read_message(char* buffer, std::size_t size, std::size_t nitems,
                                void* user) noexcept {
    auto* cur = static_cast<read_cursor*>(user);
    const std::size_t n = std::min(size * nitems, cur->data.size());
    if (n > 0) std::memcpy(buffer, cur->data.data(), n);
    cur->data.remove_prefix(n);
    return n;
}

/// An address safe to put on a MAIL FROM / RCPT TO command line.
inline bool safe_envelope_address(std::string_view a) noexcept {
    if (a.empty()) return false;
    for (const char c : a) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7F || c == '<' || c == '>') return false;
    }
    return true;
}

}  // namespace detail

/// Sends alert e-mails through libcurl. Each send opens its own connection.
/// Thread safety: send may be called concurrently (no shared mutable state).
class curl_mailer {
public:
    curl_mailer() = default;
    explicit curl_mailer(smtp_options options) : options_(std::move(options)) {}

    const smtp_options& options() const noexcept { return options_; }

    /// Delivers `m` (From/To as the envelope and the headers). Never throws.
    send_status send(const mail& m) const noexcept {
        try {
            return send_impl(m);
        } catch (const std::exception& e) {
            return send_status::failure(e.what());
        } catch (...) {
            return send_status::failure("unknown error");
        }
    }

private:
    send_status send_impl(const mail& m) const {
        if (!detail::curl_ready()) return send_status::failure("libcurl could not be initialised");
        if (m.to.empty()) return send_status::failure("no recipients");
        if (!detail::safe_envelope_address(m.from))
            return send_status::failure("invalid sender address \"" + header_value(m.from) + "\"");
        for (const auto& rcpt : m.to)
            if (!detail::safe_envelope_address(rcpt))
                return send_status::failure("invalid recipient address \"" + header_value(rcpt) +
                                            "\"");

        std::string url = options_.url;
        bool require_tls = false;
        constexpr std::string_view required = "?starttls=required";
        if (url.size() > required.size() &&
            url.compare(url.size() - required.size(), required.size(), required) == 0) {
            url.resize(url.size() - required.size());
            require_tls = true;
        }
        if (url.rfind("smtp://", 0) != 0 && url.rfind("smtps://", 0) != 0)
            return send_status::failure("not an smtp:// or smtps:// URL: \"" + header_value(url) +
                                        "\"");

        static std::atomic<std::uint64_t> counter{0};
        const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
        const std::uint64_t unique =
            (static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())
             << 8) ^
            counter.fetch_add(1, std::memory_order_relaxed);
        const std::string text = build_message(m, std::chrono::sys_seconds(now), unique);
        detail::read_cursor cursor{text};

        std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(),
                                                                 &curl_easy_cleanup);
        if (!curl) return send_status::failure("curl_easy_init failed");
        curl_slist* raw_rcpts = nullptr;
        for (const auto& rcpt : m.to) {
            curl_slist* next = curl_slist_append(raw_rcpts, rcpt.c_str());
            if (next == nullptr) {
                curl_slist_free_all(raw_rcpts);
                return send_status::failure("out of memory");
            }
            raw_rcpts = next;
        }
        std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> rcpts(raw_rcpts,
                                                                          &curl_slist_free_all);

        char errbuf[CURL_ERROR_SIZE] = {};
        const long timeout_ms = static_cast<long>(options_.timeout.count());
        CURL* h = curl.get();
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_URL, url.c_str());
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
        curl_easy_setopt(
            h, CURLOPT_USE_SSL,
            require_tls ? static_cast<long>(CURLUSESSL_ALL) : static_cast<long>(CURLUSESSL_TRY));
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (!options_.ca_file.empty())
            curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
        curl_easy_setopt(h, CURLOPT_MAIL_FROM, m.from.c_str());
        curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts.get());
        curl_easy_setopt(h, CURLOPT_READFUNCTION, &detail::read_message);
        curl_easy_setopt(h, CURLOPT_READDATA, &cursor);
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(text.size()));

        const CURLcode rc = curl_easy_perform(h);
        if (rc == CURLE_OK) return send_status::success();
        std::string why = "SMTP: ";
        why += errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
        if (rc == CURLE_OPERATION_TIMEDOUT)
            why += " (timeout " + std::to_string(timeout_ms) + " ms)";
        return send_status::failure(why);
    }

    smtp_options options_;
};

static_assert(mail_sender<curl_mailer>);

}  // namespace smart_ratelimit::smtp
