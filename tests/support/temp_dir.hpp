// tests/support/temp_dir.hpp
// A temporary directory for a test's files (SQLite databases, logs), unique per
// process and instance, removed with everything in it on destruction.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace srl_test {

class scratch_dir {
public:
    explicit scratch_dir(const std::string& tag = "test") {
        static std::mt19937_64 rng{std::random_device{}()};
        path_ = std::filesystem::temp_directory_path() /
                ("srl-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1'000'000'000ULL));
        std::filesystem::create_directories(path_);
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    /// `sqlite:////abs/path/<name>`.
    std::string sqlite_url(const std::string& name) const { return "sqlite:///" + (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

}  // namespace srl_test
