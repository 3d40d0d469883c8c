// Parses a Redis reply with hiredis's reader: compiles only with the include path
// the Redis adapter target carries, links only with libhiredis.
#include <hiredis/hiredis.h>

int redis_round_trip() {
    redisReader* reader = redisReaderCreate();
    if (reader == nullptr) return -1;
    redisReaderFeed(reader, ":42\r\n", 5);
    void* reply = nullptr;
    int value = -1;
    if (redisReaderGetReply(reader, &reply) == REDIS_OK && reply != nullptr) {
        value = static_cast<int>(static_cast<redisReply*>(reply)->integer);
        freeReplyObject(reply);
    }
    redisReaderFree(reader);
    return value;
}
