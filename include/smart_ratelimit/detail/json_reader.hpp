// smart_ratelimit/detail/json_reader.hpp
// A small, strict JSON reader (RFC 8259) for the settings file, using only the
// standard library so the core stays free of Boost. It builds a tree of
// `json_value`; objects keep their member order and reject duplicate names.
// Errors throw config_error with the line and column.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <smart_ratelimit/error.hpp>

namespace smart_ratelimit::detail {

struct json_value;
using json_array = std::vector<json_value>;
using json_object = std::vector<std::pair<std::string, json_value>>;

/// One JSON value. Numbers keep their source text so callers decide how strict
/// to be (an integer setting rejects `1.5` and `1e3`).
/// Thread safety: a plain value; distinct objects may be used concurrently.
struct json_value {
    struct number {
        std::string text;
    };
    std::variant<std::nullptr_t, bool, number, std::string, std::unique_ptr<json_array>,
                 std::unique_ptr<json_object>>
        v{nullptr};

    bool is_null() const noexcept { return v.index() == 0; }
    const bool* as_bool() const noexcept { return std::get_if<bool>(&v); }
    const number* as_number() const noexcept { return std::get_if<number>(&v); }
    const std::string* as_string() const noexcept { return std::get_if<std::string>(&v); }
    const json_array* as_array() const noexcept {
        auto p = std::get_if<std::unique_ptr<json_array>>(&v);
        return p ? p->get() : nullptr;
    }
    const json_object* as_object() const noexcept {
        auto p = std::get_if<std::unique_ptr<json_object>>(&v);
        return p ? p->get() : nullptr;
    }
    /// The JSON type name, for error messages.
    std::string_view type_name() const noexcept {
        switch (v.index()) {
            case 0:
                return "null";
            case 1:
                return "a boolean";
            case 2:
                return "a number";
            case 3:
                return "a string";
            case 4:
                return "an array";
            default:
                return "an object";
        }
    }
};

class json_reader {
public:
    /// Parses one complete document; trailing non-space text is an error.
    static json_value parse(std::string_view text, std::string_view origin) {
        json_reader r(text, origin);
        if (r.text_.substr(0, 3) == "\xEF\xBB\xBF") r.pos_ = 3;  // UTF-8 byte order mark
        r.skip_space();
        json_value v = r.value(0);
        r.skip_space();
        if (r.pos_ != r.text_.size()) r.fail("unexpected text after the JSON value");
        return v;
    }

private:
    static constexpr int max_depth = 64;

    json_reader(std::string_view text, std::string_view origin) : text_(text), origin_(origin) {}

    [[noreturn]] void fail(std::string_view what) const {
        std::size_t line = 1, col = 1;
        for (std::size_t i = 0; i < pos_ && i < text_.size(); ++i) {
            if (text_[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        throw config_error(std::string(origin_) + ":" + std::to_string(line) + ":" +
                           std::to_string(col) + ": invalid JSON: " + std::string(what));
    }

    bool at_end() const noexcept { return pos_ >= text_.size(); }
    char peek() const noexcept { return at_end() ? '\0' : text_[pos_]; }

    void skip_space() noexcept {
        while (!at_end()) {
            const char c = text_[pos_];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
            ++pos_;
        }
    }

    void expect_word(std::string_view w) {
        if (text_.substr(pos_, w.size()) != w) fail("unexpected character");
        pos_ += w.size();
    }

    json_value value(int depth) {
        if (depth > max_depth) fail("nesting too deep");
        json_value out;
        switch (peek()) {
            case '{':
                out.v = object(depth);
                break;
            case '[':
                out.v = array(depth);
                break;
            case '"':
                out.v = string();
                break;
            case 't':
                expect_word("true");
                out.v = true;
                break;
            case 'f':
                expect_word("false");
                out.v = false;
                break;
            case 'n':
                expect_word("null");
                out.v = nullptr;
                break;
            default:
                if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
                    out.v = number();
                } else {
                    fail(at_end() ? "unexpected end of input" : "unexpected character");
                }
        }
        return out;
    }

    std::unique_ptr<json_object> object(int depth) {
        auto obj = std::make_unique<json_object>();
        ++pos_;  // '{'
        skip_space();
        if (peek() == '}') {
            ++pos_;
            return obj;
        }
        for (;;) {
            skip_space();
            if (peek() != '"') fail("expected a member name in double quotes");
            std::string name = string();
            for (const auto& m : *obj)
                if (m.first == name) fail("duplicate member \"" + name + "\"");
            skip_space();
            if (peek() != ':') fail("expected ':'");
            ++pos_;
            skip_space();
            obj->emplace_back(std::move(name), value(depth + 1));
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == '}') {
                ++pos_;
                return obj;
            }
            fail("expected ',' or '}'");
        }
    }

    std::unique_ptr<json_array> array(int depth) {
        auto arr = std::make_unique<json_array>();
        ++pos_;  // '['
        skip_space();
        if (peek() == ']') {
            ++pos_;
            return arr;
        }
        for (;;) {
            skip_space();
            arr->push_back(value(depth + 1));
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == ']') {
                ++pos_;
                return arr;
            }
            fail("expected ',' or ']'");
        }
    }

    json_value::number number() {
        const std::size_t start = pos_;
        if (peek() == '-') ++pos_;
        if (peek() == '0') {
            ++pos_;
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9') ++pos_;
        } else {
            fail("invalid number");
        }
        if (peek() == '.') {
            ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("invalid number");
            while (peek() >= '0' && peek() <= '9') ++pos_;
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (peek() == '+' || peek() == '-') ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("invalid number");
            while (peek() >= '0' && peek() <= '9') ++pos_;
        }
        return {std::string(text_.substr(start, pos_ - start))};
    }

    unsigned hex4() {
        if (pos_ + 4 > text_.size()) fail("truncated \\u escape");
        unsigned v = 0;
        const auto res = std::from_chars(text_.data() + pos_, text_.data() + pos_ + 4, v, 16);
        if (res.ec != std::errc{} || res.ptr != text_.data() + pos_ + 4) fail("invalid \\u escape");
        pos_ += 4;
        return v;
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::string string() {
        ++pos_;  // opening quote
        std::string out;
        for (;;) {
            if (at_end()) fail("unterminated string");
            const char c = text_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (at_end()) fail("unterminated string");
            switch (text_[pos_++]) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    std::uint32_t cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (text_.substr(pos_, 2) != "\\u") fail("unpaired surrogate");
                        pos_ += 2;
                        const std::uint32_t lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        fail("unpaired surrogate");
                    }
                    append_utf8(out, cp);
                    break;
                }
                default:
                    --pos_;
                    fail("invalid escape");
            }
        }
    }

    std::string_view text_;
    std::string_view origin_;
    std::size_t pos_ = 0;
};

}  // namespace smart_ratelimit::detail
