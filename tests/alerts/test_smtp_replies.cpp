// tests/alerts/test_smtp_replies.cpp
// The mailer against an SMTP server that answers badly: binary greetings, endless
// multi-line replies, a reply dripped one byte at a time, unknown codes, escape
// sequences in a refusal, and a hang-up after the message that never says 250.
// libcurl parses the replies, so this is where its outcome meets ours: every case is
// a failure (never "sent"), within the timeout, described by one printable line of
// bounded length.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <smart_ratelimit/smtp.hpp>

namespace srl = smart_ratelimit;
using namespace std::chrono_literals;

namespace {

/// What the scripted server says to a command line: `text` (sent in chunks of
/// `chunk` bytes, `pause` apart) and then whether to hang up.
struct reply {
    std::string text;
    bool hang_up = false;
    std::size_t chunk = 0;  // 0: all at once
    std::chrono::milliseconds pause{0};
};

/// An SMTP server on 127.0.0.1 (a port it picks) for one connection at a time,
/// answering from a script: `greeting` first, then `answer(line)` for each command
/// line; in DATA mode the message is read up to its ending dot and then answered as
/// the line ".". Runs on its own thread; stopped and joined on destruction.
class scripted_smtp {
public:
    scripted_smtp(reply greeting, std::function<reply(const std::string&)> answer)
        : greeting_(std::move(greeting)), answer_(std::move(answer)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        REQUIRE(::listen(fd_, 4) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~scripted_smtp() {
        stopping_ = true;
        ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
        thread_.join();
        ::close(fd_);
    }
    scripted_smtp(const scripted_smtp&) = delete;
    scripted_smtp& operator=(const scripted_smtp&) = delete;

    std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }

private:
    void serve() {
        while (!stopping_) {
            const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            converse(c);
            ::close(c);
        }
    }

    bool say(int c, const reply& r) {
        const std::size_t step = r.chunk == 0 ? r.text.size() : r.chunk;
        for (std::size_t i = 0; i < r.text.size() && !stopping_; i += step) {
            const auto part = std::string_view(r.text).substr(i, step);
            if (::send(c, part.data(), part.size(), MSG_NOSIGNAL) < 0) return false;
            if (r.pause.count() > 0) std::this_thread::sleep_for(r.pause);
        }
        return !r.hang_up;
    }

    void converse(int c) {
        timeval tv{0, 100'000};  // reads wake up to notice stopping_
        ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (!say(c, greeting_)) return;
        std::string buffer, line;
        bool data = false;
        char chunk[4096];
        while (!stopping_) {
            const auto n = ::recv(c, chunk, sizeof chunk, 0);
            if (n == 0) return;
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
                return;
            }
            buffer.append(chunk, static_cast<std::size_t>(n));
            for (auto eol = buffer.find("\r\n"); eol != std::string::npos;
                 eol = buffer.find("\r\n")) {
                line = buffer.substr(0, eol);
                buffer.erase(0, eol + 2);
                if (data && line != ".") continue;
                data = false;
                const reply r = answer_(line);
                if (line == "DATA" && r.text.rfind("354", 0) == 0) data = true;
                if (!say(c, r)) return;
            }
        }
    }

    reply greeting_;
    std::function<reply(const std::string&)> answer_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

/// A well-behaved conversation up to the point a case changes it.
reply polite(const std::string& line) {
    if (line.rfind("EHLO", 0) == 0) return {"250 ok\r\n"};
    if (line.rfind("MAIL", 0) == 0 || line.rfind("RCPT", 0) == 0) return {"250 ok\r\n"};
    if (line == "DATA") return {"354 go on\r\n"};
    if (line == ".") return {"250 queued\r\n"};
    if (line == "QUIT") return {"221 bye\r\n", true};
    return {"502 no\r\n"};
}

srl::send_status send_to(const scripted_smtp& server, std::chrono::milliseconds timeout) {
    const srl::smtp::curl_mailer mailer(srl::smtp::smtp_options{server.url(), timeout, {}});
    return mailer.send(srl::mail{"alerts@example.org", {"ops@example.com"}, "subject", "body\n"});
}

/// The failure is described by one printable ASCII line of bounded length.
void check_described(const srl::send_status& s) {
    CHECK_FALSE(s.ok);
    INFO("error: " << s.error);
    CHECK_FALSE(s.error.empty());
    CHECK(s.error.size() <= 400);
    for (const char ch : s.error) CHECK((ch >= 0x20 && ch < 0x7f));
}

}  // namespace

TEST_CASE("the scripted server accepts a polite conversation (the control case)",
          "[alerts][smtp][hostile]") {
    scripted_smtp server({"220 ready\r\n"}, polite);
    const auto s = send_to(server, 5s);
    CHECK(s.ok);
    CHECK(s.error.empty());
}

TEST_CASE("hostile SMTP replies fail within the timeout and read as one printable line",
          "[alerts][smtp][hostile]") {
    std::string binary(64 * 1024, '\0');
    for (std::size_t i = 0; i < binary.size(); ++i)
        binary[i] = static_cast<char>((i * 131 + 7) % 256);
    struct scenario {
        const char* name;
        reply greeting;
        std::function<reply(const std::string&)> answer;
    };
    const scenario cases[] = {
        {"a binary greeting with no line end", {binary}, polite},
        {"a greeting with an unknown code", {"999 \x1b[31mhello\x1b[0m\r\n"}, polite},
        {"a greeting dripped one byte per 100 ms",
         {"220 slow but sure\r\n", false, 1, 100ms},
         polite},
        {"an endless multi-line EHLO reply",
         {"220 ready\r\n"},
         [](const std::string& line) -> reply {
             if (line.rfind("EHLO", 0) != 0) return polite(line);
             std::string lines;
             for (int i = 0; i < 20'000; ++i) lines += "250-PIPELINING\r\n";
             return {lines, false, 4096, 5ms};
         }},
        {"a refusal carrying escape sequences and invalid UTF-8",
         {"220 ready\r\n"},
         [](const std::string& line) -> reply {
             if (line.rfind("RCPT", 0) == 0) return {"550 \x1b]0;owned\x07 \xff\xfe no\r\n"};
             return polite(line);
         }},
        {"a hang-up after the message instead of 250",
         {"220 ready\r\n"},
         [](const std::string& line) -> reply {
             if (line == ".") return {"", true};
             return polite(line);
         }},
        {"a 4 KiB reply line to MAIL FROM",
         {"220 ready\r\n"},
         [](const std::string& line) -> reply {
             if (line.rfind("MAIL", 0) == 0) return {"451 " + std::string(4096, 'x') + "\r\n"};
             return polite(line);
         }},
    };
    for (const auto& c : cases) {
        SECTION(c.name) {
            scripted_smtp server(c.greeting, c.answer);
            const auto t0 = std::chrono::steady_clock::now();
            const auto s = send_to(server, 1s);
            CHECK(std::chrono::steady_clock::now() - t0 < 3s);
            check_described(s);
        }
    }
}
