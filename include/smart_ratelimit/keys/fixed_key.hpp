// smart_ratelimit/keys/fixed_key.hpp
// fixed_key: the same key for every request (a global limit, or a limit on one
// resource). Works with any request type.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace smart_ratelimit {

/// Returns the same key whatever the request. Thread safety: immutable.
class fixed_key {
public:
    explicit fixed_key(std::string key) : key_(std::move(key)) {}

    template <class Request>
    std::string_view operator()(const Request&) const noexcept {
        return key_;
    }

    const std::string& key() const noexcept { return key_; }

private:
    std::string key_;
};

}  // namespace smart_ratelimit
