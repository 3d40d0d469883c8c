#!/usr/bin/env python3
"""Several nodes against one shared store, next to the store's ceiling (run through
scripts/bench-scale.sh, which builds the benchmarks).

Redis Cluster: three masters on loopback. Three keys are picked so that each lands on
a different master. Ours: three bench_redis processes (BM_redis_pooled: four threads,
one connection each, through the redis-cluster:// URL), one key each. Ceiling: three
redis-benchmark processes (-c 4 -P 1), each against the master that owns its key,
running the EVALSHA the storage sends. Both sides run at once on all three, --rounds
times interleaved; the rate of a side is the sum of its three, best round.

PostgreSQL ingest: ours is three bench_event_store processes at once
(BM_postgresql_shared_async_sink: 200k events each through async_sink<event_store>)
into one fresh database; the rate is 600k over the slowest one's time, and every row
is counted in the table afterwards (with its size on disk per row). Ceiling: one
raw libpq COPY writer of the same 200k rows into a fresh database
(BM_postgresql_ceiling_raw_copy). Best of --rounds each.

Prints one line per comparison and a JSON line; exits 0 when both goals are met.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from servers import Postgres, RedisCluster  # noqa: E402

GOAL = 0.8


def log(msg):
    print(f"bench-scale: {msg}", file=sys.stderr, flush=True)


def slot_owner(rc):
    """(first slot, last slot, port) of every master."""
    out = []
    port = rc.nodes[0][0]
    text = subprocess.run(["redis-cli", "-p", str(port), "cluster", "nodes"], capture_output=True,
                          text=True, check=True).stdout
    for line in text.splitlines():
        f = line.split()
        if "master" not in f[2]:
            continue
        node_port = int(f[1].split("@")[0].rsplit(":", 1)[1])
        for r in f[8:]:
            if r.startswith("["):
                continue
            a, _, b = r.partition("-")
            out.append((int(a), int(b or a), node_port))
    return out


def keys_per_master(rc):
    """{port: key} with the key's Redis key (bench:{key}:fw) on that master."""
    ranges = slot_owner(rc)
    port = rc.nodes[0][0]
    chosen = {}
    for i in range(1000):
        key = f"n{i}"
        slot = int(subprocess.run(["redis-cli", "-p", str(port), "cluster", "keyslot", f"bench:{{{key}}}:fw"],
                                  capture_output=True, text=True, check=True).stdout)
        owner = next(p for a, b, p in ranges if a <= slot <= b)
        chosen.setdefault(owner, key)
        if len(chosen) == len(rc.nodes):
            return chosen
    raise SystemExit("bench-scale: no key found for every master")


def redis_ceiling(script_sha, keys, requests):
    procs = [subprocess.Popen(["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", "4", "-P", "1",
                               "--csv", "EVALSHA", script_sha, "1", f"bench:{{{key}}}:fw", "0", "1000000000",
                               "3600000000", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for port, key in keys.items()]
    total = 0.0
    for p in procs:
        out, _ = p.communicate(timeout=600)
        total += float(out.strip().splitlines()[-1].split(",")[1].strip('"'))
    return total


def redis_ours(bench, url, keys, seconds):
    procs = []
    for key in keys.values():
        env = dict(os.environ, SMART_RATELIMIT_BENCH_REDIS_URL=url, SMART_RATELIMIT_BENCH_REDIS_KEY=key)
        procs.append(subprocess.Popen([bench, "--benchmark_filter=BM_redis_pooled/", f"--benchmark_min_time={seconds}",
                                       "--benchmark_format=json"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True))
    total = 0.0
    for p in procs:
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            raise SystemExit("bench-scale: bench_redis failed")
        total += sum(b["items_per_second"] for b in json.loads(out)["benchmarks"])
    return total


def psql(pg, sql, db="postgres"):
    return subprocess.run([f"{pg.bin}/psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "srl", "-d", db, "-v",
                           "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True, text=True).stdout


def ingest_ceiling(bench, pg):
    env = dict(os.environ, SMART_RATELIMIT_TEST_PG_URL=pg.url)
    out = subprocess.run([bench, "--benchmark_filter=BM_postgresql_ceiling_raw_copy/",
                          "--benchmark_format=json"], env=env, capture_output=True, text=True, check=True).stdout
    return max(b["items_per_second"] for b in json.loads(out)["benchmarks"])


def ingest_ours(bench, pg, round_no):
    name = f"srl_scale_{round_no}"
    psql(pg, f"DROP DATABASE IF EXISTS {name}")
    psql(pg, f"CREATE DATABASE {name}")
    url = pg.url.rsplit("/", 1)[0] + "/" + name
    subprocess.run([bench, "--migrate", url], check=True)
    env = dict(os.environ, SMART_RATELIMIT_BENCH_PG_SHARED_URL=url)
    procs = [subprocess.Popen([bench, "--benchmark_filter=BM_postgresql_shared_async_sink/",
                               "--benchmark_format=json"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(3)]
    rows, slowest = 0, 0.0
    for p in procs:
        out, _ = p.communicate(timeout=600)
        b = json.loads(out)["benchmarks"][0]
        if p.returncode != 0 or b.get("error_occurred"):
            raise SystemExit("bench-scale: a writer failed: " + b.get("error_message", ""))
        rows += round(b["items_per_second"] * b["real_time"] / 1000)
        slowest = max(slowest, b["real_time"] / 1000)  # ms -> s
    count, size = psql(pg, "SELECT count(*), pg_total_relation_size('ratelimit_event') FROM ratelimit_event",
                       db=name).strip().split("|")
    if int(count) != rows:
        raise SystemExit(f"bench-scale: {rows} events written, {count} in the table")
    psql(pg, f"DROP DATABASE {name} WITH (FORCE)")
    return rows / slowest, int(size) / int(count)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-dir", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2)
    a = ap.parse_args()
    bench_redis = os.path.join(a.bench_dir, "bench_redis")
    bench_events = os.path.join(a.bench_dir, "bench_event_store")
    work = tempfile.mkdtemp(prefix="srl-bench-scale-")
    os.chmod(work, 0o755)
    rc, pg = RedisCluster(work), Postgres(work)
    try:
        rc.start()
        script = subprocess.run([bench_redis, "--print-script"], capture_output=True, text=True, check=True).stdout
        keys = keys_per_master(rc)
        sha = None
        for port in keys:
            sha = subprocess.run(["redis-cli", "-p", str(port), "SCRIPT", "LOAD", script], capture_output=True,
                                 text=True, check=True).stdout.strip()
        log(f"Redis Cluster {rc.url}; keys {keys}")
        ours_r, ceil_r = 0.0, 0.0
        requests = 40000
        for r in range(1, a.rounds + 1):
            log(f"round {r} of {a.rounds}: redis-benchmark x3, then bench_redis x3")
            c = redis_ceiling(sha, keys, requests)
            ceil_r = max(ceil_r, c)
            requests = max(10000, int(c / 3 * a.seconds))  # about --seconds per process
            ours_r = max(ours_r, redis_ours(bench_redis, rc.url, keys, a.seconds))
        rc.stop()

        pg.start()
        ours_i, ceil_i, row_bytes = 0.0, 0.0, 0.0
        for r in range(1, a.rounds + 1):
            log(f"round {r} of {a.rounds}: one raw COPY writer, then three async_sink writers")
            ceil_i = max(ceil_i, ingest_ceiling(bench_events, pg))
            rate, row_bytes = ingest_ours(bench_events, pg, r)
            ours_i = max(ours_i, rate)
    finally:
        rc.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    rows = [("decisions/s, 3 nodes -> Redis Cluster (3 masters)", ours_r, ceil_r, "3x redis-benchmark -c 4 -P 1"),
            ("events/s, 3 writers -> one PostgreSQL", ours_i, ceil_i, "1 raw COPY writer")]
    print(f"{'case':52} {'ours/s':>10} {'ceiling/s':>10} {'ratio':>6}  ceiling  (goal >= {GOAL})")
    ok = True
    for name, ours, ceil, how in rows:
        ratio = ours / ceil if ceil else 0.0
        ok = ok and ratio >= GOAL
        print(f"{name:52} {ours:10.0f} {ceil:10.0f} {ratio:6.2f}  {how}  {'met' if ratio >= GOAL else 'NOT met'}")
    print(f"event log: {row_bytes:.0f} bytes per row on disk (table and its indexes, PostgreSQL)")
    print(f"machine: {os.cpu_count()} cores, load average {load} after the run")
    print(json.dumps({"redis_ours": round(ours_r), "redis_ceiling": round(ceil_r),
                      "ingest_ours": round(ours_i), "ingest_ceiling": round(ceil_i),
                      "row_bytes": round(row_bytes), "goals_met": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
