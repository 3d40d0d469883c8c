// tests/support/temp_dir.hpp
// A temporary directory for a test's files (SQLite databases, logs, certificates),
// created unique by mkdtemp and removed with everything in it on destruction.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace srl_test {

class temp_dir {
public:
    /// `<system temp>/srl-<tag>-XXXXXX`.
    explicit temp_dir(const std::string& tag = "test") {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / ("srl-" + tag + "-XXXXXX")).string();
        if (::mkdtemp(tmpl.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed for " + tmpl);
        path_ = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    /// `sqlite:////abs/path/<name>`.
    std::string sqlite_url(const std::string& name = "events.db") const {
        return "sqlite:///" + (path_ / name).string();
    }

private:
    std::filesystem::path path_;
};

}  // namespace srl_test
