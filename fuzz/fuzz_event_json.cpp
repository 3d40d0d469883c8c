// fuzz/fuzz_event_json.cpp
// One line of a JSON-lines event import (`smart-ratelimit import`): an event or a
// jsonl_error, and an event that parses has the caps and the outcome rule it promises.
#include "fuzz_check.hpp"

#include "event_jsonl.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace srl = smart_ratelimit;
    try {
        const srl::event e = srl_tool::parse_event_json(srl_fuzz::text(data, size));
        srl_fuzz::require(e.key.size() <= srl::event_caps::key, "key within its cap");
        srl_fuzz::require(e.path.size() <= srl::event_caps::path, "path within its cap");
        srl_fuzz::require(e.allowed == srl::allowed_column(e.outcome), "outcome agrees");
    } catch (const srl_tool::jsonl_error&) {}
    return 0;
}
