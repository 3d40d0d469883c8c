// smart_ratelimit/beast/error.hpp
// The error codes of the adapter's asynchronous operations, as Beast's own
// (`http::error`): `beast::error` is a Boost.System error code enum in the category
// "smart_ratelimit.beast". A denial or a degraded store is never one of these: they
// are results. An error means the operation could not run as asked.
#pragma once

#include <boost/system/error_category.hpp>
#include <boost/system/error_code.hpp>

#include <string>
#include <type_traits>

namespace smart_ratelimit::beast {

/// Why an asynchronous operation failed (the first argument of its completion).
enum class error {
    /// The work executor threw when given the job (e.g. a full bounded queue).
    work_rejected = 1,
    /// The rate-limit check threw outside the store (out of memory); the result
    /// is degraded_closed, so answering it gives a 503.
    check_failed,
    /// The application's handler threw; the message is a bare 500 that closes the
    /// connection. The exception itself is not carried: catch it in the handler to
    /// keep it.
    handler_failed,
    /// The storage threw (a storage set to raise errors); the outcome is degraded.
    storage_failed,
};

namespace detail {

class error_category_impl final : public boost::system::error_category {
public:
    // A fixed id: categories compare equal across shared libraries.
    constexpr error_category_impl() noexcept
        : boost::system::error_category(0x5a7e'11a1'7b3e'a570ULL) {}

    const char* name() const noexcept override { return "smart_ratelimit.beast"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
            case error::work_rejected:
                return "the work executor rejected the job";
            case error::check_failed:
                return "the rate-limit check could not run";
            case error::handler_failed:
                return "the request handler threw an exception";
            case error::storage_failed:
                return "the storage threw an exception";
        }
        return "smart_ratelimit.beast error " + std::to_string(ev);
    }
};

}  // namespace detail

/// The category of beast::error.
inline const boost::system::error_category& error_category() noexcept {
    static const detail::error_category_impl category;
    return category;
}

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace smart_ratelimit::beast

template <>
struct boost::system::is_error_code_enum<smart_ratelimit::beast::error> : std::true_type {};
