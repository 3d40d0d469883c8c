// smart_ratelimit/soci/detail/sql_lexer.hpp
// The one SQL lexer of the SOCI adapter: identifier characters, keywords, quoted
// text, $tag$ bodies, and a token reader. schema.hpp splits migrations into
// statements with it; the event writer reads CREATE TRIGGER headers with it.
#pragma once

#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace smart_ratelimit::soci::detail {

inline bool ident_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '$';
}

/// Whether the upper-case keyword `word` stands at sql[i] as a whole word, in any case.
inline bool keyword_at(std::string_view sql, std::size_t i, std::string_view word) noexcept {
    if (i + word.size() > sql.size()) return false;
    if (i > 0 && ident_char(sql[i - 1])) return false;
    if (i + word.size() < sql.size() && ident_char(sql[i + word.size()])) return false;
    for (std::size_t k = 0; k < word.size(); ++k) {
        char c = sql[i + k];
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (c != word[k]) return false;
    }
    return true;
}

/// The index of the character closing the quoted text that opens at sql[i] (one of
/// ' " ` [; a doubled quote inside stays inside, `[...]` has no escape), npos when
/// it is unterminated.
inline std::size_t quoted_end(std::string_view sql, std::size_t i) noexcept {
    const char close = sql[i] == '[' ? ']' : sql[i];
    for (std::size_t end = i + 1; end < sql.size(); ++end) {
        if (sql[end] != close) continue;
        if (close != ']' && end + 1 < sql.size() && sql[end + 1] == close) {
            ++end;  // a doubled quote
            continue;
        }
        return end;
    }
    return std::string_view::npos;
}

/// The index of the last character of the $tag$...$tag$ body that opens at sql[i]
/// (npos when unterminated), or `i` itself when no valid tag starts there.
inline std::size_t dollar_body_end(std::string_view sql, std::size_t i) noexcept {
    if (i > 0 && ident_char(sql[i - 1])) return i;
    const auto tag_end = sql.find('$', i + 1);
    if (tag_end == std::string_view::npos) return i;
    const std::string_view tag = sql.substr(i, tag_end - i + 1);
    for (const char t : tag.substr(1, tag.size() - 2))
        if (!ident_char(t) || t == '$') return i;
    const auto close = sql.find(tag, tag_end + 1);
    return close == std::string_view::npos ? std::string_view::npos : close + tag.size() - 1;
}

/// Splits a migration's SQL on the ';' that end statements: not inside '...',
/// "...", $tag$...$tag$ (PostgreSQL function bodies), -- comments, or a
/// BEGIN ... END block (SQLite trigger bodies; CASE ... END nests inside).
inline std::vector<std::string> split_statements(std::string_view sql) {
    std::vector<std::string> out;
    auto emit = [&](std::string_view stmt) {
        while (!stmt.empty() &&
               (stmt.front() == ' ' || stmt.front() == '\n' || stmt.front() == '\t'))
            stmt.remove_prefix(1);
        while (!stmt.empty() && (stmt.back() == ' ' || stmt.back() == '\n' || stmt.back() == '\t'))
            stmt.remove_suffix(1);
        if (!stmt.empty()) out.emplace_back(stmt);
    };
    std::size_t start = 0;
    int depth = 0;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (c == '\'' || c == '"') {
            const auto close = quoted_end(sql, i);
            i = close == std::string_view::npos ? sql.size() : close;
        } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
            const auto nl = sql.find('\n', i);
            i = nl == std::string_view::npos ? sql.size() : nl;
        } else if (c == '$') {
            const auto close = dollar_body_end(sql, i);
            i = close == std::string_view::npos ? sql.size() : close;
        } else if (keyword_at(sql, i, "BEGIN") || keyword_at(sql, i, "CASE")) {
            ++depth;
        } else if (keyword_at(sql, i, "END")) {
            if (depth > 0) --depth;
        } else if (c == ';' && depth == 0) {
            emit(sql.substr(start, i - start));
            start = i + 1;
        }
    }
    if (start < sql.size()) emit(sql.substr(start));
    return out;
}

/// Reads SQL token by token: a quoted name kept as is (quotes included), '.', '('
/// or ')', or a bare word upper-cased; "" at the end or at an unterminated quote.
class sql_tokens {
public:
    explicit sql_tokens(std::string_view sql) : sql_(sql) {}

    std::string next() {
        while (at_ < sql_.size() && std::isspace(static_cast<unsigned char>(sql_[at_]))) ++at_;
        if (at_ >= sql_.size()) return {};
        const char open = sql_[at_];
        if (open == '"' || open == '`' || open == '[' || open == '\'') {
            const std::size_t end = quoted_end(sql_, at_);
            if (end == std::string_view::npos) {
                at_ = sql_.size();
                return {};
            }
            std::string token(sql_.substr(at_, end + 1 - at_));
            at_ = end + 1;
            return token;
        }
        if (open == '.' || open == '(' || open == ')') return std::string(1, sql_[at_++]);
        std::string token;
        while (at_ < sql_.size() && !std::isspace(static_cast<unsigned char>(sql_[at_])) &&
               sql_[at_] != '.' && sql_[at_] != '(' && sql_[at_] != ')')
            token += static_cast<char>(std::toupper(static_cast<unsigned char>(sql_[at_++])));
        return token;
    }

private:
    std::string_view sql_;
    std::size_t at_ = 0;
};

}  // namespace smart_ratelimit::soci::detail
