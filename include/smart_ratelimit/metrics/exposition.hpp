// smart_ratelimit/metrics/exposition.hpp
// The Prometheus text exposition format 0.0.4, standard headers only: metric and
// label name validation, label value and HELP escaping (invalid UTF-8 replaced),
// numbers promtool accepts (shortest round-trip doubles, +Inf, no locale), and
// `exposition`, which groups the samples of every collector by family for a scrape.
#pragma once

#include <smart_ratelimit/detail/utf8.hpp>
#include <smart_ratelimit/error.hpp>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace smart_ratelimit::metrics {

/// The TYPE of a metric family.
enum class metric_type { counter, gauge, histogram, untyped };

constexpr std::string_view to_string(metric_type t) noexcept {
    switch (t) {
        case metric_type::counter:
            return "counter";
        case metric_type::gauge:
            return "gauge";
        case metric_type::histogram:
            return "histogram";
        case metric_type::untyped:
            break;
    }
    return "untyped";
}

/// One label of a sample: views, valid for the call they are passed to.
struct label {
    std::string_view name;
    std::string_view value;
};

/// True for a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
constexpr bool is_valid_metric_name(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
    }
    return true;
}

/// True for a valid label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"
/// (reserved for Prometheus' own labels).
constexpr bool is_valid_label_name(std::string_view s) noexcept {
    if (s.empty() || s.starts_with("__")) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
    }
    return true;
}

namespace detail {
using smart_ratelimit::detail::utf8_sequence;

// Appends `s` escaped: backslash and newline always, the double quote when
// `quote`; each byte of invalid UTF-8 becomes U+FFFD.
inline void append_escaped(std::string& out, std::string_view s, bool quote) {
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (static_cast<unsigned char>(c) < 0x80) {
            if (c == '\\')
                out += "\\\\";
            else if (c == '\n')
                out += "\\n";
            else if (c == '"' && quote)
                out += "\\\"";
            else
                out += c;
            ++i;
        } else if (const std::size_t n = utf8_sequence(s, i); n != 0) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += smart_ratelimit::detail::replacement_character;
            ++i;
        }
    }
}
}  // namespace detail

/// Appends a label value as the format wants it between the quotes: `\` as `\\`,
/// `"` as `\"`, newline as `\n`; invalid UTF-8 bytes as U+FFFD.
inline void append_label_value(std::string& out, std::string_view v) {
    detail::append_escaped(out, v, true);
}

/// Appends a HELP text: `\` as `\\`, newline as `\n`; invalid UTF-8 as U+FFFD.
inline void append_help(std::string& out, std::string_view v) {
    detail::append_escaped(out, v, false);
}

/// Appends `v`: the shortest text that reads back as the same double (std::to_chars,
/// no locale), "+Inf", "-Inf" or "NaN".
inline void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, r.ptr);
    }
}

/// Appends an integer value exactly.
inline void append_number(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

/// Collects the samples of one scrape, grouped by family, and writes them as text.
///
/// A family is declared once per scrape (by the first collector that reports it;
/// later declarations with the same name and type add to it, so two async sinks
/// or two storages report under one family with different labels). Samples are
/// written in the order given; families in the order first declared.
/// Invalid metric or label names, a type clash, or a sample of an undeclared family
/// throw config_error. Keeping two samples of a family apart (different label
/// values) is the callers' job.
/// Thread safety: a plain value, used by one scrape at a time.
class exposition {
public:
    /// Declares family `name` of type `t`; `help` is escaped.
    void declare(std::string_view name, metric_type t, std::string_view help) {
        if (!is_valid_metric_name(name))
            throw config_error("invalid metric name \"" + std::string(name) + "\"");
        for (auto& f : families_) {
            if (f.name != name) continue;
            if (f.type != t)
                throw config_error("metric \"" + std::string(name) + "\" declared as " +
                                   std::string(to_string(f.type)) + " and " +
                                   std::string(to_string(t)));
            return;
        }
        family f;
        f.name = std::string(name);
        f.type = t;
        f.header = "# HELP ";
        f.header += name;
        f.header += ' ';
        append_help(f.header, help);
        f.header += "\n# TYPE ";
        f.header += name;
        f.header += ' ';
        f.header += to_string(t);
        f.header += '\n';
        families_.push_back(std::move(f));
    }

    /// One sample of a counter, gauge or untyped family.
    void sample(std::string_view family_name, std::span<const label> labels, double v) {
        std::string& out = start_sample(family_name, {}, labels, {});
        append_number(out, v);
        out += '\n';
    }
    void sample(std::string_view family_name, std::span<const label> labels, std::uint64_t v) {
        std::string& out = start_sample(family_name, {}, labels, {});
        append_number(out, v);
        out += '\n';
    }
    void sample(std::string_view family_name, std::initializer_list<label> labels, double v) {
        sample(family_name, std::span<const label>(labels.begin(), labels.size()), v);
    }
    void sample(std::string_view family_name, std::initializer_list<label> labels,
                std::uint64_t v) {
        sample(family_name, std::span<const label>(labels.begin(), labels.size()), v);
    }

    /// One series of a histogram family: `counts[i]` observations fell in bucket i
    /// (not cumulative; counts.size() == upper_bounds.size() + 1, the last being
    /// above every bound). Writes cumulative `_bucket{le=...}` lines ending with
    /// le="+Inf", then `_sum` and `_count`. `upper_bounds` ascend and are finite.
    void histogram(std::string_view family_name, std::span<const label> labels,
                   std::span<const double> upper_bounds, std::span<const std::uint64_t> counts,
                   double sum) {
        if (counts.size() != upper_bounds.size() + 1)
            throw config_error("histogram \"" + std::string(family_name) +
                               "\": " + std::to_string(counts.size()) + " counts for " +
                               std::to_string(upper_bounds.size()) + " bounds");
        std::uint64_t cumulative = 0;
        std::string le;
        for (std::size_t i = 0; i < counts.size(); ++i) {
            cumulative += counts[i];
            le.clear();
            if (i < upper_bounds.size())
                append_number(le, upper_bounds[i]);
            else
                le = "+Inf";
            std::string& out = start_sample(family_name, "_bucket", labels, le);
            append_number(out, cumulative);
            out += '\n';
        }
        std::string& s = start_sample(family_name, "_sum", labels, {});
        append_number(s, sum);
        s += '\n';
        std::string& c = start_sample(family_name, "_count", labels, {});
        append_number(c, cumulative);
        c += '\n';
    }

    /// Appends the text of every family (HELP, TYPE, samples) to `out`.
    void write_to(std::string& out) const {
        for (const auto& f : families_) {
            out += f.header;
            out += f.samples;
        }
    }
    std::string str() const {
        std::string out;
        write_to(out);
        return out;
    }

    /// A point to roll back to (the registry drops what a failing collector wrote).
    struct checkpoint {
        std::vector<std::size_t> sizes;
    };
    checkpoint mark() const {
        checkpoint c;
        c.sizes.reserve(families_.size());
        for (const auto& f : families_) c.sizes.push_back(f.samples.size());
        return c;
    }
    void rollback(const checkpoint& c) {
        families_.resize(c.sizes.size());
        for (std::size_t i = 0; i < c.sizes.size(); ++i) families_[i].samples.resize(c.sizes[i]);
    }

private:
    struct family {
        std::string name;
        metric_type type = metric_type::untyped;
        std::string header;
        std::string samples;
    };

    family& find(std::string_view name) {
        for (auto& f : families_)
            if (f.name == name) return f;
        throw config_error("metric \"" + std::string(name) + "\" has samples but was not declared");
    }

    // Writes `name<suffix>{labels[,le="..."]} ` into the family's samples.
    std::string& start_sample(std::string_view family_name, std::string_view suffix,
                              std::span<const label> labels, std::string_view le) {
        family& f = find(family_name);
        if ((f.type == metric_type::histogram) != !suffix.empty())
            throw config_error("metric \"" + f.name +
                               "\": histogram samples only through histogram()");
        std::string& out = f.samples;
        out += f.name;
        out += suffix;
        if (!labels.empty() || !le.empty()) {
            out += '{';
            bool first = true;
            for (const label& l : labels) {
                if (!is_valid_label_name(l.name) ||
                    (f.type == metric_type::histogram && l.name == "le"))
                    throw config_error("metric \"" + f.name + "\": invalid label name \"" +
                                       std::string(l.name) + "\"");
                if (!first) out += ',';
                first = false;
                out += l.name;
                out += "=\"";
                append_label_value(out, l.value);
                out += '"';
            }
            if (!le.empty()) {
                if (!first) out += ',';
                out += "le=\"";
                out += le;
                out += '"';
            }
            out += '}';
        }
        out += ' ';
        return out;
    }

    std::vector<family> families_;
};

/// collector: reports samples at scrape time.
///
/// | expression       | type | meaning                                                    |
/// |------------------|------|------------------------------------------------------------|
/// | `c.collect(out)` | any  | declares its families on `out` and adds their samples      |
///
/// `c` is a const C, `out` an exposition&. A collector reads values other components
/// already count (no hot-path cost); it may throw, and the registry then drops what it
/// wrote in that scrape. Thread safety: called from the scraping thread, concurrently
/// with whatever updates the values it reads.
template <class C>
concept collector = requires(const C& c, exposition& out) {
    c.collect(out);
};

}  // namespace smart_ratelimit::metrics
