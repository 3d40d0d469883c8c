// tests/support/cli_runner.hpp
// Runs the built smart-ratelimit program (SRL_TOOL_PATH, defined by the test
// target) as a user runs it: in a working directory, with given stdin and extra
// environment, every settings variable cleared; returns the exit code, stdout and stderr.
#pragma once

#include "support/temp_dir.hpp"

#include <smart_ratelimit/settings.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef SRL_TOOL_PATH
#error "SRL_TOOL_PATH must name the smart-ratelimit binary"
#endif

namespace srl_test {

struct cli_result {
    int code;
    std::string out;
    std::string err;
};

/// `s` in single quotes for /bin/sh.
inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (const char c : s) {
        if (c == '\'')
            q += "'\\''";
        else
            q += c;
    }
    return q + "'";
}

/// The whole file, "" when it cannot be read.
inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/// Runs the program in `cwd` with `words` (its arguments as /bin/sh reads them,
/// quotes and all), `input` on stdin and `env` (entries "NAME=value") in the
/// environment; every settings variable (RATELIMIT_SETTINGS and each RATELIMIT_*
/// setting) is cleared first, so only `env` speaks.
inline cli_result run_cli_words(const temp_dir& cwd, const std::string& words,
                                const std::string& input = "",
                                const std::vector<std::string>& env = {}) {
    const auto in = cwd.path() / "stdin.txt", out = cwd.path() / "stdout.txt",
               err = cwd.path() / "stderr.txt";
    std::ofstream(in, std::ios::binary) << input;
    std::string cmd = "cd " + shell_quote(cwd.path().string()) + " && env -u RATELIMIT_SETTINGS";
    for (const auto name : smart_ratelimit::setting_names) cmd += " -u " + std::string(name);
    for (const auto& e : env) cmd += " " + shell_quote(e);
    cmd += " " + shell_quote(SRL_TOOL_PATH) + " " + words;
    cmd += " <" + shell_quote(in.string()) + " >" + shell_quote(out.string()) + " 2>" +
           shell_quote(err.string());
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

/// The same with `args`, each passed as one argument whatever it holds.
inline cli_result run_cli(const temp_dir& cwd, const std::vector<std::string>& args,
                          const std::string& input = "", const std::vector<std::string>& env = {}) {
    std::string words;
    for (const auto& a : args) words += (words.empty() ? "" : " ") + shell_quote(a);
    return run_cli_words(cwd, words, input, env);
}

}  // namespace srl_test
