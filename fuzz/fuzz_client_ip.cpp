// fuzz/fuzz_client_ip.cpp
// The client address: IPv4/IPv6 text, CIDR blocks and lists (RATELIMIT_TRUSTED_PROXIES),
// and X-Forwarded-For lines walked from a trusted peer. An address or block that
// parses prints as text that parses back to it.
#include "fuzz_check.hpp"

#include <smart_ratelimit/keys/cidr.hpp>
#include <smart_ratelimit/keys/ip.hpp>

#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace srl = smart_ratelimit;
    const std::string_view in = srl_fuzz::text(data, size);
    if (const auto ip = srl::ip_address::parse(in)) {
        const auto again = srl::ip_address::parse(ip->to_string());
        srl_fuzz::require(again && *again == *ip, "ip_address round trip");
    }
    if (const auto block = srl::cidr::parse(in)) {
        const auto again = srl::cidr::parse(block->to_string());
        srl_fuzz::require(again && again->to_string() == block->to_string(), "cidr round trip");
    }
    try {
        (void)srl::cidr_list::parse(in);
    } catch (const srl::config_error&) {}
    // The input as X-Forwarded-For lines (split at '\n') from a peer trusted with
    // everything, so the walk reads every hop.
    std::vector<std::string> lines;
    std::string_view rest = in;
    while (true) {
        const auto nl = rest.find('\n');
        lines.emplace_back(rest.substr(0, nl));
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }
    const auto everyone = srl::cidr_list::parse("0.0.0.0/0,::/0");
    const auto peer = *srl::ip_address::parse("10.0.0.1");
    (void)srl::resolve_client_ip(peer, everyone, lines);
    return 0;
}
