// fuzz/fuzz_staff_auth.cpp
// The staff credentials of a dashboard request: `Authorization` and `Cookie` headers
// (the input's first line and the rest) read by staff_token_authorizer. Whatever the
// bytes, a request is staff only if it carries the token.
#include "fuzz_check.hpp"

#include <smart_ratelimit/beast/authorizer.hpp>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <exception>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace sb = smart_ratelimit::beast;
    namespace http = boost::beast::http;
    static const sb::staff_token_authorizer auth("staff-token-0123456789");
    const std::string_view in = srl_fuzz::text(data, size);
    const auto nl = in.find('\n');
    http::request_header<> h;
    try {
        h.set(http::field::authorization, in.substr(0, nl));
        if (nl != std::string_view::npos) h.set(http::field::cookie, in.substr(nl + 1));
    } catch (const std::exception&) {
        return 0;  // a value Beast refuses never reaches the authorizer
    }
    const bool staff = auth.is_staff(h);
    srl_fuzz::require(!staff || in.find("staff-token-0123456789") != std::string_view::npos,
                      "staff only with the token");
    return 0;
}
