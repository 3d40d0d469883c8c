// tests/tools/test_limit_cli.cpp
// `smart-ratelimit limit` run as built against a private redis-server: the JSON
// line, exit 0 / 75, --peek, --cost, bad arguments (64, with the bad value named),
// an unreachable store (69), and 30 concurrent processes at limit 10 admitting 10.
#include <catch2/catch.hpp>

#include "support/cli_runner.hpp"
#include "support/closed_port.hpp"
#include "support/redis_server.hpp"

#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace {

using run_result = srl_test::cli_result;

/// `smart-ratelimit limit <args>`, the arguments as the shell reads them.
run_result run(const std::string& args) {
    const srl_test::temp_dir cwd("limit-cli");
    return srl_test::run_cli_words(cwd, "limit " + args);
}

srl_test::redis_server& server() {
    static srl_test::redis_server s;
    return s;
}

std::string store() { return "--store " + server().url() + " "; }

}  // namespace

TEST_CASE("limit prints one JSON line and exits 0 until the limit, then 75",
          "[cli][limit][redis]") {
    for (int i = 0; i < 3; ++i) {
        const auto r = run(store() + "--rate 3/h --key cli:basic");
        INFO(r.err);
        REQUIRE(r.code == 0);
        CHECK(r.out.find("{\"allowed\":true,\"key\":\"cli:basic\",\"algorithm\":\"fixed_window\","
                         "\"limit\":3") == 0);
        CHECK(r.out.find("\"remaining\":" + std::to_string(2 - i)) != std::string::npos);
        CHECK(r.out.find("\"retry_after_ms\":0") != std::string::npos);
        CHECK(r.out.back() == '\n');
        CHECK(r.out.find('\n') == r.out.size() - 1);
    }
    const auto d = run(store() + "--rate 3/h --key cli:basic");
    CHECK(d.code == 75);
    CHECK(d.out.find("{\"allowed\":false") == 0);
    CHECK(d.out.find("\"remaining\":0") != std::string::npos);
    CHECK(d.out.find("\"retry_after_ms\":0") == std::string::npos);
}

TEST_CASE("limit honours --algorithm, --cost and --peek", "[cli][limit][redis]") {
    auto r = run(store() + "--rate 5/h --key cli:tb --algorithm token_bucket --cost 4");
    CHECK(r.code == 0);
    CHECK(r.out.find("\"algorithm\":\"token_bucket\"") != std::string::npos);
    CHECK(r.out.find("\"remaining\":1") != std::string::npos);
    r = run(store() + "--rate 5/h --key cli:tb --algorithm token_bucket --cost 2 --peek");
    CHECK(r.code == 75);
    CHECK(r.out.find("\"peek\":true") != std::string::npos);
    r = run(store() + "--rate 5/h --key cli:tb --algorithm token_bucket --peek");
    CHECK(r.code == 0);
    r = run(store() + "--rate 5/h --key cli:tb --algorithm token_bucket");
    CHECK(r.code == 0);  // the peek consumed nothing
    r = run(store() + "--rate 5/h --key cli:tb --algorithm token_bucket --cost 6");
    CHECK(r.code == 75);
    CHECK(r.out.find("\"retry_after_ms\":null") != std::string::npos);
    CHECK(r.out.find("\"retryable\":false") != std::string::npos);
    r = run(store() + "--rate 2/h --key 'cli:\"quoted\"' --algorithm gcra");
    CHECK(r.code == 0);
    CHECK(r.out.find("\"key\":\"cli:\\\"quoted\\\"\"") != std::string::npos);
}

TEST_CASE("limit rejects bad arguments with exit 64 and names them", "[cli][limit]") {
    const std::string url = "redis://127.0.0.1:1 ";
    struct bad_case {
        std::string args;
        std::string says;
    };
    for (const auto& c :
         {bad_case{"--store " + url + "--database sqlite:///x.db --rate 3/h --key k", "give one"},
          bad_case{"--store " + url + "--key k", "--rate"},
          bad_case{"--store " + url + "--rate 3/h", "--key"},
          bad_case{"--store " + url + "--rate 3/hours --key k", "3/hours"},
          bad_case{"--store " + url + "--rate 3/h --key k --algorithm leaky", "leaky"},
          bad_case{"--store " + url + "--rate 3/h --key k --cost 0", "--cost"},
          bad_case{"--store memory --rate 3/h --key k", "meaningless"},
          bad_case{"--store sqlite://x.db --rate 3/h --key k", "three slashes"},
          bad_case{"--store postgresql://u@h --rate 3/h --key k", "database name"},
          bad_case{"--store redis://h:notaport --rate 3/h --key k", "port"},
          bad_case{"--store mongodb://h --rate 3/h --key k", "mongodb://h"},
          bad_case{"--store " + url + "--rate 3/h --key k --bogus", "--bogus"}}) {
        const auto r = run(c.args);
        INFO(c.args << " -> " << r.err);
        CHECK(r.code == 64);
        CHECK(r.err.find(c.says) != std::string::npos);
        CHECK(r.out.empty());
    }
}

TEST_CASE("limit exits 69 when the store cannot be reached", "[cli][limit]") {
    const srl_test::closed_port closed;
    const auto r =
        run("--store redis://" + closed.address() + " --rate 3/h --key k --timeout-ms 300");
    CHECK(r.code == 69);
    CHECK(r.err.find(closed.address()) != std::string::npos);
    CHECK(r.out.empty());
}

TEST_CASE("thirty concurrent limit processes on one key at limit 10 admit exactly 10",
          "[cli][limit][redis]") {
    for (const char* alg : {"fixed_window", "sliding_window", "token_bucket", "leaky_bucket"}) {
        const std::string key = std::string("cli:race:") + alg;
        const std::string cmd = "ok=0; for i in $(seq 30); do (" + std::string(SRL_TOOL_PATH) +
                                " limit " + store() + "--rate 10/h --algorithm " + alg + " --key " +
                                key + " >/dev/null 2>&1; echo $?) & done | grep -c '^0$'";
        FILE* p = ::popen(cmd.c_str(), "r");
        REQUIRE(p != nullptr);
        char buf[64] = {};
        const std::size_t n = std::fread(buf, 1, sizeof buf - 1, p);
        ::pclose(p);
        INFO(alg);
        CHECK(std::stoi(std::string(buf, n)) == 10);
    }
}
