// fuzz/fuzz_webhook_response.cpp
// A webhook receiver's answer, as the client reads it (Beast's response parser, the
// client's limits) and judges it: delivered exactly for a 2xx status; otherwise an
// error that is one printable line of bounded length, whatever the receiver sent.
#include "fuzz_check.hpp"

#include <smart_ratelimit/beast/webhook_client.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> p;
    p.body_limit(64 * 1024);
    boost::system::error_code ec;
    p.put(boost::asio::buffer(data, size), ec);
    if (!p.is_header_done()) return 0;
    const auto st = smart_ratelimit::beast::webhook_response_status(p.get().base());
    const unsigned status = p.get().result_int();
    srl_fuzz::require(st.ok == (status >= 200 && status < 300), "delivered exactly for 2xx");
    srl_fuzz::require(st.ok || st.error.size() < 400, "a bounded error");
    for (const char c : st.error)
        srl_fuzz::require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "printable");
    return 0;
}
