// smart_ratelimit/beast/webhook_client.hpp
// A webhook_sender over Boost.Beast: one HTTP/1.1 POST of a JSON body to an
// http:// or https:// URL (certificate and host name verified, SNI sent), one
// deadline for the whole exchange; only a 2xx status is a delivery. Redirects are not
// followed (a 3xx is a failure naming its Location) and no proxy is used (the
// connection goes to the URL's host; HTTP_PROXY and HTTPS_PROXY are ignored). With a
// signing secret it adds X-Smart-Ratelimit-Timestamp and X-Smart-Ratelimit-Signature
// (`sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`). Needs OpenSSL.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/ssl/verify_mode.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <smart_ratelimit/alerts/channels.hpp>
#include <smart_ratelimit/detail/text.hpp>
#include <smart_ratelimit/detail/utf8.hpp>
#include <smart_ratelimit/settings.hpp>
#include <smart_ratelimit/version.hpp>

namespace smart_ratelimit::beast {

/// What a webhook receiver's answer means: a delivery for a 2xx status, else a failure
/// naming the status, its reason and, for a 3xx (redirects are not followed), the
/// Location. The receiver's words reach logs and alert reports, so each is quoted as
/// one printable line, then capped (an escaped byte takes up to four).
inline send_status webhook_response_status(const boost::beast::http::response_header<>& res) {
    const unsigned status = res.result_int();
    if (status >= 200 && status < 300) return send_status::success();
    std::string why =
        "webhook: HTTP " + std::to_string(status) + " " +
        smart_ratelimit::detail::capped(smart_ratelimit::detail::printable_line(res.reason()), 100);
    if (status >= 300 && status < 400) {
        why += " (redirects are not followed; configure the final URL";
        if (const auto location = res[boost::beast::http::field::location]; !location.empty())
            why += ": Location " + smart_ratelimit::detail::capped(
                                       smart_ratelimit::detail::printable_line(location), 200);
        why += ")";
    }
    return send_status::failure(why);
}

/// The signature headers a signed webhook carries.
inline constexpr std::string_view webhook_timestamp_header = "X-Smart-Ratelimit-Timestamp";
inline constexpr std::string_view webhook_signature_header = "X-Smart-Ratelimit-Signature";

/// `sha256=` followed by the lower-case hex HMAC-SHA256 of "<timestamp>.<body>"
/// keyed with `secret`. Receivers recompute it and compare in constant time.
inline std::string webhook_signature(std::string_view secret, std::int64_t timestamp,
                                     std::string_view body) {
    const std::string signed_text = std::to_string(timestamp) + "." + std::string(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac,
             &mac_len) == nullptr)
        throw std::runtime_error("HMAC-SHA256 failed");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "sha256=";
    for (unsigned int i = 0; i < mac_len; ++i) {
        out += hex[mac[i] >> 4];
        out += hex[mac[i] & 0xF];
    }
    return out;
}

/// How to POST.
struct webhook_options {
    std::chrono::milliseconds timeout{
        5000};            // the whole exchange: resolve, connect, TLS, write, read
    std::string secret;   // "" = unsigned
    std::string ca_file;  // PEM trust store for https; "" = the system's
};

/// The options the settings describe (timeout, signing secret, CA file).
inline webhook_options webhook_options_from(const settings& s) {
    return webhook_options{s.alert_timeout, s.alert_webhook_secret, s.alert_ca_file};
}

/// Posts alert webhooks. Each post runs its own io_context on the calling thread.
/// Thread safety: post may be called concurrently (no shared mutable state).
class webhook_client {
public:
    webhook_client() = default;
    explicit webhook_client(webhook_options options) : options_(std::move(options)) {}

    const webhook_options& options() const noexcept { return options_; }

    /// POSTs `body` as application/json to `url`. Never throws.
    send_status post(std::string_view url, std::string_view body) const noexcept {
        try {
            return post_impl(url, body);
        } catch (const std::exception& e) {
            return send_status::failure(e.what());
        } catch (...) {
            return send_status::failure("unknown error");
        }
    }

private:
    struct target {
        bool tls = false;
        std::string host;  // without IPv6 brackets
        std::string port;
        std::string host_header;
        std::string path;
    };

    static std::optional<target> parse_target(std::string_view url, std::string& why) {
        auto parsed = boost::urls::parse_absolute_uri(url);
        if (!parsed) {
            why = "invalid webhook URL: " + std::string(parsed.error().message());
            return std::nullopt;
        }
        const auto& u = *parsed;
        target t;
        if (u.scheme() == "https")
            t.tls = true;
        else if (u.scheme() != "http") {
            why = "webhook URL must be http:// or https://";
            return std::nullopt;
        }
        if (u.has_userinfo()) {
            why = "webhook URL must not contain user information";
            return std::nullopt;
        }
        t.host = u.host_address();
        if (t.host.empty()) {
            why = "webhook URL has no host";
            return std::nullopt;
        }
        t.port = u.has_port() ? std::string(u.port()) : std::string(t.tls ? "443" : "80");
        t.host_header = std::string(u.encoded_host_and_port());
        t.path = std::string(u.encoded_path());
        if (t.path.empty()) t.path = "/";
        if (u.has_query()) t.path += "?" + std::string(u.encoded_query());
        return t;
    }

    send_status post_impl(std::string_view url, std::string_view body) const {
        namespace net = boost::asio;
        namespace http = boost::beast::http;
        std::string why;
        const auto t = parse_target(url, why);
        if (!t) return send_status::failure(why);

        http::request<http::string_body> req{http::verb::post, t->path, 11};
        req.set(http::field::host, t->host_header);
        req.set(http::field::user_agent, "smart-ratelimit/" + std::string(version_string));
        req.set(http::field::content_type, "application/json");
        req.set(http::field::connection, "close");
        if (!options_.secret.empty()) {
            const auto ts = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
            req.set(webhook_timestamp_header, std::to_string(ts));
            req.set(webhook_signature_header, webhook_signature(options_.secret, ts, body));
        }
        req.body() = std::string(body);
        req.prepare_payload();

        // The TLS context outlives the io_context (and any coroutine frame it still holds).
        std::optional<net::ssl::context> ctx;
        if (t->tls) {
            ctx.emplace(net::ssl::context::tls_client);
            ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                             net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                             net::ssl::context::no_tlsv1_1);
            if (options_.ca_file.empty())
                ctx->set_default_verify_paths();
            else
                ctx->load_verify_file(options_.ca_file);
            ctx->set_verify_mode(net::ssl::verify_peer);
        }
        net::io_context ioc;
        std::optional<send_status> result;
        const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
        net::co_spawn(ioc, exchange(*t, std::move(req), ctx ? &*ctx : nullptr, deadline),
                      [&result](std::exception_ptr e, send_status st) {
                          if (e) {
                              try {
                                  std::rethrow_exception(e);
                              } catch (const boost::system::system_error& se) {
                                  result = send_status::failure(describe(se.code()));
                              } catch (const std::exception& ex) {
                                  result = send_status::failure(ex.what());
                              }
                          } else {
                              result = std::move(st);
                          }
                      });
        // Every network step has the deadline; the resolver (getaddrinfo) cannot be
        // cancelled, so stop waiting for it a little after the deadline.
        ioc.run_for(options_.timeout + std::chrono::milliseconds(500));
        if (!result)
            return send_status::failure("webhook: timed out after " +
                                        std::to_string(options_.timeout.count()) + " ms");
        return *result;
    }

    static std::string describe(const boost::system::error_code& ec) {
        if (ec == boost::beast::error::timeout) return "webhook: timed out";
        return "webhook: " + ec.message();
    }

    static boost::asio::awaitable<send_status> exchange(
        target t, boost::beast::http::request<boost::beast::http::string_body> req,
        boost::asio::ssl::context* ctx, std::chrono::steady_clock::time_point deadline) {
        namespace net = boost::asio;
        namespace http = boost::beast::http;
        using tcp = net::ip::tcp;
        auto ex = co_await net::this_coro::executor;
        tcp::resolver resolver(ex);
        const auto endpoints = co_await resolver.async_resolve(t.host, t.port, net::use_awaitable);

        http::response_parser<http::string_body> parser;
        parser.body_limit(1024 * 1024);
        boost::beast::flat_buffer buffer;
        if (ctx == nullptr) {
            boost::beast::tcp_stream stream(ex);
            stream.expires_at(deadline);
            co_await stream.async_connect(endpoints, net::use_awaitable);
            stream.expires_at(deadline);
            co_await http::async_write(stream, req, net::use_awaitable);
            stream.expires_at(deadline);
            co_await http::async_read(stream, buffer, parser, net::use_awaitable);
            boost::system::error_code ignored;
            stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        } else {
            boost::beast::ssl_stream<boost::beast::tcp_stream> stream(ex, *ctx);
            // SNI and host name verification: a name is checked against DNS names,
            // an IP literal against IP address entries.
            boost::system::error_code ip_ec;
            (void)net::ip::make_address(t.host, ip_ec);
            if (ip_ec && !SSL_set_tlsext_host_name(stream.native_handle(), t.host.c_str()))
                co_return send_status::failure("webhook: cannot set the TLS server name");
            stream.set_verify_callback(net::ssl::host_name_verification(t.host));
            auto& tcp_layer = boost::beast::get_lowest_layer(stream);
            tcp_layer.expires_at(deadline);
            co_await tcp_layer.async_connect(endpoints, net::use_awaitable);
            tcp_layer.expires_at(deadline);
            co_await stream.async_handshake(net::ssl::stream_base::client, net::use_awaitable);
            tcp_layer.expires_at(deadline);
            co_await http::async_write(stream, req, net::use_awaitable);
            tcp_layer.expires_at(deadline);
            co_await http::async_read(stream, buffer, parser, net::use_awaitable);
            boost::system::error_code ignored;
            tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
        }
        co_return webhook_response_status(parser.get());
    }

    webhook_options options_;
};

static_assert(webhook_sender<webhook_client>);

}  // namespace smart_ratelimit::beast
