// tests/keys/test_keys_ip.cpp
// The standard-library IP utilities behind the HTTP key extractors: strict
// parsing, RFC 5952 canonical text, IPv6 grouping, CIDR blocks and lists, and the
// X-Forwarded-For walk from a trusted proxy (spoofing included).
#include <smart_ratelimit/keys/cidr.hpp>
#include <smart_ratelimit/keys/ip.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace srl = smart_ratelimit;
using srl::ip_address;

namespace {
std::string canon(std::string_view s) {
    auto c = srl::canonical_ip(s);
    return c ? *c : std::string("<invalid>");
}
ip_address ip(std::string_view s) { return ip_address::from_string(s); }
}  // namespace

TEST_CASE("IPv4 addresses parse strictly as four decimal octets", "[beast][keys]") {
    CHECK(canon("192.0.2.1") == "192.0.2.1");
    CHECK(canon("0.0.0.0") == "0.0.0.0");
    CHECK(canon("255.255.255.255") == "255.255.255.255");
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.04", "1..2.3",
                            "1.2.3.4.", ".1.2.3.4", " 1.2.3.4", "1.2.3.4 ", "0x1.2.3.4", "1.2.3.-4",
                            "1.2.3.4/32", "1.2.3.4:80", "1234.1.1.1", "localhost", "1.2.3.a"}) {
        INFO(bad);
        CHECK_FALSE(ip_address::parse(bad));
    }
}

TEST_CASE("IPv6 addresses print in RFC 5952 canonical form", "[beast][keys]") {
    CHECK(canon("2001:DB8:0:0:0:0:0:1") == "2001:db8::1");
    CHECK(canon("2001:0db8:0000:0000:0000:0000:0000:0001") == "2001:db8::1");
    CHECK(canon("2001:db8:0:0:1:0:0:1") == "2001:db8::1:0:0:1");     // first run on a tie
    CHECK(canon("2001:db8:0:1:1:1:1:1") == "2001:db8:0:1:1:1:1:1");  // a single 0 is not compressed
    CHECK(canon("2001:0:0:1:0:0:0:1") == "2001:0:0:1::1");           // the longest run wins
    CHECK(canon("::") == "::");
    CHECK(canon("::1") == "::1");
    CHECK(canon("1::") == "1::");
    CHECK(canon("fe80::1:2") == "fe80::1:2");
    CHECK(canon("1:2:3:4:5:6:7::") == "1:2:3:4:5:6:7:0");
    CHECK(canon("::2:3:4:5:6:7:8") == "0:2:3:4:5:6:7:8");
    CHECK(canon("::1.2.3.4") == "::102:304");
    CHECK(canon("64:ff9b::192.0.2.33") == "64:ff9b::c000:221");
}

TEST_CASE("IPv4-mapped IPv6 addresses are the IPv4 address", "[beast][keys]") {
    CHECK(canon("::ffff:192.0.2.1") == "192.0.2.1");
    CHECK(canon("::FFFF:c000:0201") == "192.0.2.1");
    CHECK(canon("0:0:0:0:0:ffff:192.0.2.1") == "192.0.2.1");
    CHECK(ip("::ffff:10.1.2.3") == ip("10.1.2.3"));
    CHECK(ip("::ffff:10.1.2.3").is_v4());
}

TEST_CASE("malformed IPv6 text is rejected", "[beast][keys]") {
    for (const char* bad :
         {":", ":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9",
          "1:2:3:4:5:6:7:8::", "12345::", "g::1", "1:2:3:4:5:6:7", ":1:2:3:4:5:6:7",
          "1:2:3:4:5:6:7:", "::1%eth0", "[::1]", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "::1.2.3.4:5",
          "1.2.3.4::", "::ffff:01.2.3.4", " ::1"}) {
        INFO(bad);
        CHECK_FALSE(ip_address::parse(bad));
    }
    CHECK_THROWS_WITH(ip_address::from_string("not-an-ip"), Catch::Contains("\"not-an-ip\""));
}

TEST_CASE("IP keys group IPv6 clients by their /64 network", "[beast][keys]") {
    CHECK(srl::ip_key(ip("203.0.113.5")) == "ip:203.0.113.5");
    CHECK(srl::ip_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")) == "ip:2001:db8:1:2::/64");
    CHECK(srl::ip_key(ip("2001:db8:1:2::1")) == srl::ip_key(ip("2001:DB8:1:2:ffff::9")));
    CHECK(srl::ip_key(ip("2001:db8:1:3::1")) != srl::ip_key(ip("2001:db8:1:2::1")));
    CHECK(srl::ip_key(ip("2001:db8::1"), {32, 128}) == "ip:2001:db8::1");
    CHECK(srl::ip_key(ip("2001:db8:abcd:ef12::1"), {32, 48}) == "ip:2001:db8:abcd::/48");
    CHECK(srl::ip_key(ip("2001:db8:abcd:ef12::1"), {32, 52}) == "ip:2001:db8:abcd:e000::/52");
    CHECK(srl::ip_key(ip("203.0.113.77"), {24, 64}) == "ip:203.0.113.0/24");
    CHECK(srl::ip_key(ip("::ffff:203.0.113.5")) == "ip:203.0.113.5");
    CHECK_THROWS_WITH((srl::ip_grouping{32, 0}.validate()),
                      Catch::Contains("IPv6 grouping prefix"));
    CHECK_THROWS_WITH((srl::ip_grouping{33, 64}.validate()),
                      Catch::Contains("IPv4 grouping prefix"));
}

TEST_CASE("CIDR blocks parse strictly and match their addresses", "[beast][keys]") {
    const auto ten = srl::cidr::from_string("10.0.0.0/8");
    CHECK(ten.contains(ip("10.255.0.1")));
    CHECK_FALSE(ten.contains(ip("11.0.0.1")));
    CHECK(ten.contains(ip("::ffff:10.1.1.1")));
    CHECK_FALSE(ten.contains(ip("::a01:101")));
    CHECK(srl::cidr::from_string("::ffff:10.0.0.0/104") == ten);
    CHECK(srl::cidr::from_string("192.0.2.7").contains(ip("192.0.2.7")));
    CHECK_FALSE(srl::cidr::from_string("192.0.2.7").contains(ip("192.0.2.8")));
    CHECK(srl::cidr::from_string("0.0.0.0/0").contains(ip("8.8.8.8")));
    CHECK_FALSE(srl::cidr::from_string("0.0.0.0/0").contains(ip("2001:db8::1")));
    const auto v6 = srl::cidr::from_string("2001:DB8::/32");
    CHECK(v6.to_string() == "2001:db8::/32");
    CHECK(v6.contains(ip("2001:db8:ffff::1")));
    CHECK_FALSE(v6.contains(ip("2001:db9::1")));
    CHECK(srl::cidr::from_string("fc00::/7").contains(ip("fdff::1")));
    CHECK_THROWS_WITH(srl::cidr::from_string("fd00::/7"), Catch::Contains("host bits"));
    CHECK_FALSE(srl::cidr::from_string("fc00::/8").contains(ip("fd00::1")));

    CHECK_THROWS_WITH(srl::cidr::from_string("10.0.0.1/8"), Catch::Contains("host bits"));
    CHECK_THROWS_WITH(srl::cidr::from_string("10.0.0.0/33"), Catch::Contains("prefix length"));
    CHECK_THROWS_WITH(srl::cidr::from_string("10.0.0.0/"), Catch::Contains("\"10.0.0.0/\""));
    CHECK_THROWS_WITH(srl::cidr::from_string("10.0.0.0/08"), Catch::Contains("prefix length"));
    CHECK_THROWS_WITH(srl::cidr::from_string("10.0.0.0/+8"), Catch::Contains("prefix length"));
    CHECK_THROWS_WITH(srl::cidr::from_string("::/129"), Catch::Contains("prefix length"));
    CHECK_THROWS_WITH(srl::cidr::from_string("proxy.local/8"),
                      Catch::Contains("not an IP address"));
    CHECK_THROWS_WITH(srl::cidr::from_string("::ffff:0:0/95"), Catch::Contains("at least 96"));
}

TEST_CASE("CIDR lists parse a comma-separated setting and name a bad item", "[beast][keys]") {
    const auto list = srl::cidr_list::parse(" 10.0.0.0/8, 192.168.0.0/16 ,2001:db8::/32");
    CHECK(list.size() == 3);
    CHECK(list.contains(ip("192.168.3.4")));
    CHECK(list.contains(ip("2001:db8::5")));
    CHECK_FALSE(list.contains(ip("172.16.0.1")));
    CHECK(srl::cidr_list::parse("").empty());
    CHECK(srl::cidr_list::parse("  ").empty());
    CHECK_THROWS_WITH(srl::cidr_list::parse("10.0.0.0/8,,1.2.3.4"), Catch::Contains("empty item"));
    CHECK_THROWS_WITH(srl::cidr_list::parse("10.0.0.0/8, 1.2.3"), Catch::Contains("\"1.2.3\""));
    const std::vector<std::string> from_settings{"127.0.0.1", "::1"};
    const auto l2 = srl::cidr_list::from_strings(from_settings);
    CHECK(l2.contains(ip("127.0.0.1")));
    CHECK(l2.contains(ip("::1")));
}

TEST_CASE("forwarded hops accept ports and brackets, nothing else", "[beast][keys]") {
    CHECK(srl::parse_forwarded_hop(" 203.0.113.5 ") == ip("203.0.113.5"));
    CHECK(srl::parse_forwarded_hop("203.0.113.5:8080") == ip("203.0.113.5"));
    CHECK(srl::parse_forwarded_hop("[2001:db8::1]") == ip("2001:db8::1"));
    CHECK(srl::parse_forwarded_hop("[2001:db8::1]:443") == ip("2001:db8::1"));
    CHECK(srl::parse_forwarded_hop("2001:db8::1") == ip("2001:db8::1"));
    for (const char* bad : {"unknown", "_hidden", "", "[1.2.3.4]", "[::1", "[::1]x",
                            "1.2.3.4:", "1.2.3.4:http", "1.2.3.4:123456", "::1:", "\"1.2.3.4\""}) {
        INFO(bad);
        CHECK_FALSE(srl::parse_forwarded_hop(bad));
    }
}

TEST_CASE("an untrusted peer's X-Forwarded-For is ignored", "[beast][keys]") {
    const auto trusted = srl::cidr_list::parse("10.0.0.0/8");
    const std::vector<std::string> xff{"1.1.1.1"};
    CHECK(srl::resolve_client_ip(ip("198.51.100.7"), trusted, xff) == ip("198.51.100.7"));
    CHECK(srl::resolve_client_ip(ip("10.0.0.1"), srl::cidr_list{}, xff) == ip("10.0.0.1"));
}

TEST_CASE("a trusted proxy chain is walked right to left to the first untrusted hop",
          "[beast][keys]") {
    const auto trusted = srl::cidr_list::parse("10.0.0.0/8, 2001:db8:ffff::/48");
    // The client forged "6.6.6.6"; the edge proxy appended the real address.
    const std::vector<std::string> one{"6.6.6.6, 203.0.113.5, 10.0.0.2"};
    CHECK(srl::resolve_client_ip(ip("10.0.0.1"), trusted, one) == ip("203.0.113.5"));
    // Several field lines are one list, in order.
    const std::vector<std::string> lines{"6.6.6.6", "203.0.113.5", "10.0.0.3, 10.0.0.2"};
    CHECK(srl::resolve_client_ip(ip("10.0.0.1"), trusted, lines) == ip("203.0.113.5"));
    const std::vector<std::string> v6{"2001:db8:1::99, 2001:DB8:FFFF::1"};
    CHECK(srl::resolve_client_ip(ip("10.0.0.1"), trusted, v6) == ip("2001:db8:1::99"));
    const std::vector<std::string> mapped{"::ffff:203.0.113.9"};
    CHECK(srl::resolve_client_ip(ip("::ffff:10.0.0.1"), trusted, mapped) == ip("203.0.113.9"));
    // Empty elements are skipped.
    const std::vector<std::string> empties{"203.0.113.5,, 10.0.0.2,"};
    CHECK(srl::resolve_client_ip(ip("10.0.0.1"), trusted, empties) == ip("203.0.113.5"));
    // No header at all: the peer.
    CHECK(srl::resolve_client_ip(ip("10.0.0.1"), trusted, std::vector<std::string>{}) ==
          ip("10.0.0.1"));
}

TEST_CASE("a malformed hop stops the walk at the last trusted hop", "[beast][keys]") {
    const auto trusted = srl::cidr_list::parse("10.0.0.0/8");
    const std::vector<std::string> garbage{"203.0.113.5, bogus, 10.0.0.2"};
    CHECK(srl::resolve_client_ip(ip("10.0.0.1"), trusted, garbage) == ip("10.0.0.2"));
    const std::vector<std::string> first_bad{"203.0.113.5, unknown"};
    CHECK(srl::resolve_client_ip(ip("10.0.0.1"), trusted, first_bad) == ip("10.0.0.1"));
    // Every hop trusted: the leftmost one.
    const std::vector<std::string> all_trusted{"10.9.9.9, 10.0.0.2"};
    CHECK(srl::resolve_client_ip(ip("10.0.0.1"), trusted, all_trusted) == ip("10.9.9.9"));
}

TEST_CASE("every IPv4 octet prints in decimal without leading zeros", "[beast][keys]") {
    // Each octet value in each position, against text built independently.
    for (unsigned v = 0; v < 256; ++v) {
        const std::string o = std::to_string(v);
        for (int pos = 0; pos < 4; ++pos) {
            std::string text;
            for (int i = 0; i < 4; ++i) text += (i ? "." : "") + (i == pos ? o : std::string("7"));
            INFO(text);
            REQUIRE(ip(text).to_string() == text);
            char buf[ip_address::max_text_size];
            REQUIRE(std::string_view(buf, ip(text).write(buf)) == text);
        }
    }
    CHECK(srl::ip_key(ip("10.20.30.40"), {8, 64}) == "ip:10.0.0.0/8");
    CHECK(srl::ip_key(ip("2001:db8:1:2:3:4:5:6"), {32, 112}) == "ip:2001:db8:1:2:3:4:5:0/112");
    // The longest IPv6 text fits the buffer exactly.
    const auto widest = ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
    CHECK(widest.to_string().size() == ip_address::max_text_size);
}
