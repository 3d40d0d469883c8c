// smart_ratelimit/metrics/detail/labels.hpp
// Owned label sets and the checks done when a metric is constructed: a valid
// metric name and valid, distinct label names (so scrapes never fail on them).
#pragma once

#include <smart_ratelimit/error.hpp>
#include <smart_ratelimit/metrics/exposition.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smart_ratelimit::metrics {

/// Constant labels of a series, owned: {{"name", "value"}, ...}.
using label_set = std::vector<std::pair<std::string, std::string>>;

namespace detail {
inline void check_metric(std::string_view name, const std::vector<std::string_view>& label_names) {
    if (!is_valid_metric_name(name))
        throw config_error("invalid metric name \"" + std::string(name) + "\"");
    for (std::size_t i = 0; i < label_names.size(); ++i) {
        if (!is_valid_label_name(label_names[i]))
            throw config_error("metric \"" + std::string(name) + "\": invalid label name \"" +
                               std::string(label_names[i]) + "\"");
        for (std::size_t j = 0; j < i; ++j)
            if (label_names[i] == label_names[j])
                throw config_error("metric \"" + std::string(name) + "\": duplicate label \"" +
                                   std::string(label_names[i]) + "\"");
    }
}

inline void check_metric(std::string_view name, const label_set& labels) {
    std::vector<std::string_view> names;
    for (const auto& l : labels) names.push_back(l.first);
    check_metric(name, names);
}

inline std::vector<label> views(const label_set& labels) {
    std::vector<label> out;
    out.reserve(labels.size());
    for (const auto& l : labels) out.push_back({l.first, l.second});
    return out;
}
}  // namespace detail

}  // namespace smart_ratelimit::metrics
