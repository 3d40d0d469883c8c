// Parses JSON and a URL with the Boost libraries the Beast adapter target carries:
// compiles only with Boost's include path, links only with Boost.JSON and Boost.URL.
#include <boost/json.hpp>
#include <boost/url.hpp>

int beast_round_trip() {
    const boost::json::value v = boost::json::parse(R"({"limit": 41})");
    const auto url = boost::urls::parse_uri("http://127.0.0.1:8080/api?limit=2");
    if (!url) return -1;
    return static_cast<int>(v.at("limit").as_int64()) + static_cast<int>(url->params().size());
}
