// tests/support/receivers.hpp
// Real servers on 127.0.0.1 for the alert tests, each on a port picked at run
// time and stopped by its owner: the aiosmtpd SMTP receiver (a child process,
// stopped by its PID), a Beast HTTP(S) receiver (a thread, joined), a listener
// that never answers, a refused port, and test certificates made with openssl.
#pragma once

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace srl_alerts_test {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

using temp_dir = srl_test::temp_dir;

inline void run_or_fail(const std::string& cmd) {
    INFO(cmd);
    REQUIRE(std::system(("( " + cmd + " ) >/dev/null 2>&1").c_str()) == 0);
}

/// A test CA and three server certificates: `good` (localhost, 127.0.0.1, signed by
/// the CA), `wrong_host` (only wrong.example, signed by the CA), and `self_signed`
/// (localhost, 127.0.0.1, signed by nobody the client trusts).
struct tls_material {
    explicit tls_material(const fs::path& dir) : dir_(dir) {
        const std::string d = dir.string();
        const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        run_or_fail("openssl req -x509 " + ec + " -keyout " + d + "/ca.key -out " + d +
                    "/ca.pem -days 2 -subj /CN=smart-ratelimit-test-ca");
        issue("good", "DNS:localhost,IP:127.0.0.1", true);
        issue("wrong_host", "DNS:wrong.example", true);
        issue("self_signed", "DNS:localhost,IP:127.0.0.1", false);
    }

    std::string ca() const { return (dir_ / "ca.pem").string(); }
    std::string cert(const std::string& name) const { return (dir_ / (name + ".pem")).string(); }
    std::string key(const std::string& name) const { return (dir_ / (name + ".key")).string(); }

private:
    void issue(const std::string& name, const std::string& san, bool by_ca) {
        const std::string d = dir_.string();
        const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        {
            std::ofstream ext(dir_ / (name + ".ext"));
            ext << "subjectAltName=" << san << "\n";
        }
        if (by_ca) {
            run_or_fail("openssl req " + ec + " -keyout " + d + "/" + name + ".key -out " + d +
                        "/" + name + ".csr -subj /CN=" + name);
            run_or_fail("openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d +
                        "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -out " + d + "/" + name +
                        ".pem -days 2 -extfile " + d + "/" + name + ".ext");
        } else {
            run_or_fail("openssl req -x509 " + ec + " -keyout " + d + "/" + name + ".key -out " +
                        d + "/" + name +
                        ".pem -days 2 -subj /CN=localhost -addext subjectAltName=" + san);
        }
    }

    fs::path dir_;
};

/// The aiosmtpd receiver (tests/support/smtp_receiver.py) as a child process.
class smtp_receiver {
public:
    explicit smtp_receiver(std::vector<std::string> extra_args = {}) {
        const fs::path script = fs::path(SRL_TEST_SUPPORT_DIR) / "smtp_receiver.py";
        std::vector<std::string> args{SRL_PYTHON3, script.string(), dir_.path().string()};
        for (auto& a : extra_args) args.push_back(std::move(a));
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        // The receiver's own log (aiosmtpd reports failed handshakes there).
        const std::string log = (dir_.path() / "receiver.log").string();
        posix_spawn_file_actions_t actions;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                           0600);
        ::posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                           0600);
        const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&actions);
        REQUIRE(rc == 0);
        const auto port_file = dir_.path() / "port";
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!fs::exists(port_file)) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                FAIL("the SMTP receiver exited before it was ready");
            }
            if (std::chrono::steady_clock::now() > give_up) FAIL("the SMTP receiver did not start");
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        port_ = std::stoi(read_file(port_file));
    }
    ~smtp_receiver() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }
    smtp_receiver(const smtp_receiver&) = delete;
    smtp_receiver& operator=(const smtp_receiver&) = delete;

    int port() const noexcept { return port_; }
    std::string url(const std::string& scheme = "smtp") const {
        return scheme + "://127.0.0.1:" + std::to_string(port_);
    }
    /// Messages received so far, in order: the raw DATA and the envelope JSON.
    std::size_t count() const {
        std::size_t n = 0;
        while (fs::exists(dir_.path() / ("msg-" + std::to_string(n + 1) + ".eml"))) ++n;
        return n;
    }
    std::string message(std::size_t i) const {
        return read_file(dir_.path() / ("msg-" + std::to_string(i) + ".eml"));
    }
    std::string envelope(std::size_t i) const {
        return read_file(dir_.path() / ("msg-" + std::to_string(i) + ".json"));
    }

private:
    temp_dir dir_;
    pid_t pid_ = -1;
    int port_ = 0;
};

/// One request as the HTTP receiver saw it.
struct received_request {
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
};

/// A Beast HTTP(S) server on its own thread: records each request and answers
/// with `status` (and a Location header when `location` is set). Stopped and joined
/// on destruction.
class http_receiver {
public:
    explicit http_receiver(unsigned status = 200, const std::string& cert = {},
                           const std::string& key = {}, std::string location = {})
        : status_(status), location_(std::move(location)), acceptor_(ioc_) {
        namespace net = boost::asio;
        if (!cert.empty()) {
            ssl_.emplace(net::ssl::context::tls_server);
            ssl_->use_certificate_chain_file(cert);
            ssl_->use_private_key_file(key, net::ssl::context::pem);
        }
        const net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
        acceptor_.open(ep.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        net::co_spawn(ioc_, accept_loop(), net::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~http_receiver() {
        ioc_.stop();
        thread_.join();
    }
    http_receiver(const http_receiver&) = delete;
    http_receiver& operator=(const http_receiver&) = delete;

    int port() const noexcept { return port_; }
    std::string url(const std::string& host = "127.0.0.1",
                    const std::string& path = "/hook") const {
        return std::string(ssl_ ? "https" : "http") + "://" + host + ":" + std::to_string(port_) +
               path;
    }
    std::vector<received_request> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    /// TLS handshakes the server saw fail (the client rejected the certificate).
    int failed_handshakes() const {
        std::lock_guard lock(mutex_);
        return failed_handshakes_;
    }

private:
    boost::asio::awaitable<void> accept_loop() {
        namespace net = boost::asio;
        for (;;) {
            auto socket = co_await acceptor_.async_accept(net::use_awaitable);
            net::co_spawn(ioc_, serve(std::move(socket)), net::detached);
        }
    }

    template <class Stream>
    boost::asio::awaitable<void> exchange(Stream& stream) {
        namespace net = boost::asio;
        namespace http = boost::beast::http;
        boost::beast::flat_buffer buffer;
        http::request<http::string_body> req;
        co_await http::async_read(stream, buffer, req, net::use_awaitable);
        received_request r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        for (const auto& f : req) {
            std::string name(f.name_string());
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            r.headers[name] = std::string(f.value());
        }
        r.body = req.body();
        {
            std::lock_guard lock(mutex_);
            requests_.push_back(std::move(r));
        }
        http::response<http::string_body> res{static_cast<http::status>(status_), 11};
        res.set(http::field::content_type, "text/plain");
        if (!location_.empty()) res.set(http::field::location, location_);
        if (status_ != 204 && status_ != 304 && status_ >= 200) res.body() = "received\n";
        res.keep_alive(false);
        res.prepare_payload();
        co_await http::async_write(stream, res, net::use_awaitable);
    }

    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket) {
        namespace net = boost::asio;
        try {
            if (!ssl_) {
                co_await exchange(socket);
                boost::system::error_code ec;
                socket.shutdown(net::ip::tcp::socket::shutdown_both, ec);
                co_return;
            }
            boost::beast::ssl_stream<net::ip::tcp::socket> stream(std::move(socket), *ssl_);
            try {
                co_await stream.async_handshake(net::ssl::stream_base::server, net::use_awaitable);
            } catch (const boost::system::system_error&) {
                std::lock_guard lock(mutex_);
                ++failed_handshakes_;
                co_return;
            }
            co_await exchange(stream);
        } catch (const boost::system::system_error&) {
            // the client went away; nothing to record
        }
    }

    unsigned status_;
    std::string location_;
    boost::asio::io_context ioc_;
    std::optional<boost::asio::ssl::context> ssl_;
    boost::asio::ip::tcp::acceptor acceptor_;
    int port_ = 0;
    mutable std::mutex mutex_;
    std::vector<received_request> requests_;
    int failed_handshakes_ = 0;
    std::thread thread_;
};

/// A socket that listens and never accepts: connections complete in the kernel's
/// backlog, then nothing is ever said or answered (the client's timeout must fire).
class silent_listener {
public:
    silent_listener() : acceptor_(ioc_) {
        namespace net = boost::asio;
        const net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
        acceptor_.open(ep.protocol());
        acceptor_.bind(ep);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
    }
    int port() const noexcept { return port_; }

private:
    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    int port_ = 0;
};

/// A loopback port nobody listens on (bound, then released).
inline int refused_port() {
    namespace net = boost::asio;
    net::io_context ioc;
    net::ip::tcp::acceptor a(ioc, net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    const int port = a.local_endpoint().port();
    a.close();
    return port;
}

}  // namespace srl_alerts_test
