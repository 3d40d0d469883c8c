// fuzz/fuzz_staff_auth.cpp
// The staff credentials of a dashboard request: the `Authorization` header (the
// input's first line) read by staff_token_authorizer, and the `Cookie` header (the
// rest, each "SESSION" in it replaced by a live session's id) whose session cookies
// are looked up in staff_sessions. Whatever the bytes, a request is staff only with
// the token in Authorization (a cookie holding the token is not), and a cookie finds
// a session only when its value is that session's id.
#include "fuzz_check.hpp"

#include <smart_ratelimit/beast/authorizer.hpp>
#include <smart_ratelimit/beast/staff_sessions.hpp>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <exception>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace sb = smart_ratelimit::beast;
    namespace http = boost::beast::http;
    static const sb::staff_token_authorizer auth("staff-token-0123456789");
    static sb::staff_sessions<> sessions;
    static const std::string live = sessions.create().id;
    const std::string_view in = srl_fuzz::text(data, size);
    const auto nl = in.find('\n');
    const std::string_view authorization = in.substr(0, nl);
    std::string cookie(nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1));
    for (auto at = cookie.find("SESSION"); at != std::string::npos;
         at = cookie.find("SESSION", at + live.size()))
        cookie.replace(at, 7, live);
    http::request_header<> h;
    try {
        h.set(http::field::authorization, authorization);
        if (nl != std::string_view::npos) h.set(http::field::cookie, cookie);
    } catch (const std::exception&) {
        return 0;  // a value Beast refuses never reaches the authorizer
    }
    const bool staff = auth.is_staff(h);
    srl_fuzz::require(
        !staff || authorization.find("staff-token-0123456789") != std::string_view::npos,
        "staff only with the token in Authorization");
    sb::detail::for_each_cookie(h, "srl_staff", [&](std::string_view value) {
        if (sessions.find(value)) srl_fuzz::require(value == live, "a session only for its id");
    });
    return 0;
}
