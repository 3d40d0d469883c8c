// fuzz/fuzz_redis_reply.cpp
// What Redis answers a rate-limit script, as hiredis reads it off the wire (RESP) with
// the library's reply functions and the storage decodes it: an outcome with values
// clamped into range, or a storage_error whose text is bounded, and no allocation a
// reply header alone can inflate, whatever the server (or whatever sits between) sent.
#include "fuzz_check.hpp"

#include <smart_ratelimit/redis/redis_storage.hpp>

#include <hiredis/read.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace srl = smart_ratelimit;
    // The reply functions every connection of the library reads with.
    redisReader* reader =
        redisReaderCreateWithFunctions(srl::redis::detail::bounded_reply_functions());
    if (reader == nullptr) return 0;
    reader->maxbuf = 0;
    if (redisReaderFeed(reader, reinterpret_cast<const char*>(data), size) == REDIS_OK) {
        void* reply = nullptr;
        while (redisReaderGetReply(reader, &reply) == REDIS_OK && reply != nullptr) {
            const srl::redis::reply_ptr r(static_cast<redisReply*>(reply));
            try {
                const srl::outcome o = srl::redis::detail::script_outcome(*r, "redis://fuzz");
                srl_fuzz::require(o.reset_after.count() >= 0, "reset_after is not negative");
                srl_fuzz::require(o.retry_after.count() >= 0, "retry_after is not negative");
            } catch (const srl::storage_error& e) {
                srl_fuzz::require(std::string_view(e.what()).size() < 1000, "a bounded error");
            }
            reply = nullptr;
        }
    }
    redisReaderFree(reader);
    return 0;
}
