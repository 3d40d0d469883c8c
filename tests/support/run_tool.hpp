// tests/support/run_tool.hpp
// Runs the smart-ratelimit program as built (SRL_TOOL_PATH) in a given working
// directory, with RATELIMIT_DATABASE_URL and RATELIMIT_SETTINGS cleared and then
// the test's own variables set, and returns its exit status, stdout and stderr
// (captured through files in that directory: stdout.txt, stderr.txt).
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef SRL_TOOL_PATH
#error "define SRL_TOOL_PATH to the smart-ratelimit executable"
#endif

namespace srl_test {

/// How the program ended: exit status (-1 when killed) and what it printed.
struct run_result {
    int status = -1;
    std::string out, err;
};

/// The whole content of a file.
inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Runs the tool with `args` in `dir` (its working directory), with the
/// database settings cleared from the environment and then `env` ("K=V") set.
inline run_result run_tool(const std::vector<std::string>& args, const std::filesystem::path& dir,
                           const std::vector<std::string>& env = {}) {
    const std::filesystem::path out = dir / "stdout.txt", err = dir / "stderr.txt";
    const pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<std::string> argv{SRL_TOOL_PATH};
        argv.insert(argv.end(), args.begin(), args.end());
        std::vector<char*> p;
        for (auto& a : argv) p.push_back(a.data());
        p.push_back(nullptr);
        const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(o, 1);
        ::dup2(e, 2);
        ::close(o);
        ::close(e);
        ::unsetenv("RATELIMIT_DATABASE_URL");
        ::unsetenv("RATELIMIT_SETTINGS");
        for (const auto& kv : env) {
            const auto eq = kv.find('=');
            ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
        }
        if (::chdir(dir.c_str()) != 0) ::_exit(126);
        ::execv(p[0], p.data());
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    run_result r;
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

}  // namespace srl_test
