// tests/support/closed_port.hpp
// closed_port: a TCP port on 127.0.0.1 where nothing listens, for as long as the
// object lives. free_port() only says a port was free a moment ago; a server that
// another test starts meanwhile could take it, and a test expecting "connection
// refused" would reach that server instead. This holds the port bound, without
// listening and without SO_REUSEADDR, so a connection to it is refused and no other
// socket can bind it (Linux refuses a second bind unless both sockets set
// SO_REUSEADDR).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace srl_test {

class closed_port {
public:
    closed_port() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            const std::string why = std::strerror(errno);
            if (fd_ >= 0) ::close(fd_);
            throw std::runtime_error("cannot hold a closed port: " + why);
        }
        port_ = ntohs(a.sin_port);
    }
    closed_port(const closed_port&) = delete;
    closed_port& operator=(const closed_port&) = delete;
    ~closed_port() { ::close(fd_); }

    int port() const noexcept { return port_; }
    /// "127.0.0.1:<port>"
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

private:
    int fd_;
    int port_ = 0;
};

}  // namespace srl_test
