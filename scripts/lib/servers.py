"""Servers the scripts in scripts/ start and break: a private PostgreSQL, Redis and
Redis Cluster on 127.0.0.1 (ports picked here), the demo server, and the means to kill,
freeze (SIGSTOP) and thaw each by its own PID. Imported by soak.py and cluster.py."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

def log(msg, who="soak"):
    print(f"{who}: [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_is_ours(proc, port, seconds=10):
    """Waits until the redis-server on `port` reports `proc`'s PID (True), or `proc`
    exits first (False: a free port was taken before it bound; try others)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        info = subprocess.run(["redis-cli", "-p", str(port), "info", "server"], capture_output=True,
                              text=True).stdout
        if f"process_id:{proc.pid}\r" in info or f"process_id:{proc.pid}\n" in info:
            return True
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise SystemExit(f"redis-server did not answer on port {port}")


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out.append(int(d))
    return out


class Process:
    """A child process with kill / freeze / thaw by its own PID (and its children's)."""

    def __init__(self):
        self.proc = None
        self.frozen = []

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.thaw()
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def freeze(self):
        self.frozen = [self.proc.pid] + children_of(self.proc.pid)
        for p in self.frozen:
            os.kill(p, signal.SIGSTOP)

    def thaw(self):
        for p in self.frozen:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []


class Postgres(Process):
    def __init__(self, work):
        super().__init__()
        self.bin = sorted(d for d in os.listdir("/usr/lib/postgresql"))[-1]
        self.bin = f"/usr/lib/postgresql/{self.bin}/bin"
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        self.as_pg = []
        if os.geteuid() == 0:
            self.as_pg = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        subprocess.run(self.as_pg + [f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U", "srl",
                                     "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"postgresql://srl@127.0.0.1:{self.port}/postgres"

    def start(self):
        self.log = open(os.path.join(self.dir, "pg.log"), "a")
        self.proc = subprocess.Popen(
            self.as_pg + [f"{self.bin}/postgres", "-D", f"{self.dir}/data", "-p", str(self.port),
                          "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
                          # Durable commits: a soak kills the server and then counts the
                          # rows it acknowledged (synchronous_commit=off would lose some).
                          "-c", "max_connections=100"],
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            if subprocess.run([f"{self.bin}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit("soak: PostgreSQL did not start; see " + self.dir + "/pg.log")

    def stop(self):
        self.thaw()
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def count_events(self):
        r = subprocess.run([f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "srl", "-d", "postgres",
                            "-Atc", "SELECT count(*) FROM ratelimit_event"], capture_output=True, text=True)
        return int(r.stdout.strip()) if r.returncode == 0 else None


class Redis(Process):
    def __init__(self, work):
        super().__init__()
        self.dir = work
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.started = False

    def start(self):
        """Starts on its port; the first start moves to another if that one was taken."""
        for _ in range(5):
            self.proc = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                 "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if redis_is_ours(self.proc, self.port):
                self.started = True
                return
            if self.started:
                break
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}"
        raise SystemExit(f"Redis could not start on port {self.port}")

    def stop(self):
        self.thaw()
        if self.alive():
            self.proc.terminate()
            self.proc.wait()




class RedisCluster:
    """Three (or more) masters with --cluster-enabled, joined by redis-cli --cluster create."""

    def __init__(self, work, masters=3):
        self.dir = os.path.join(work, "cluster")
        os.makedirs(self.dir)
        self.nodes = []
        for _ in range(masters):
            port, bus = free_port(), free_port()
            while bus == port:
                bus = free_port()
            self.nodes.append((port, bus))
        self.procs = []
        self.url = "redis-cluster://" + ",".join(f"127.0.0.1:{p}" for p, _ in self.nodes)

    def start(self):
        for i, (port, bus) in enumerate(self.nodes):
            for _ in range(5):
                proc = subprocess.Popen(
                    ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--cluster-enabled", "yes",
                     "--cluster-port", str(bus), "--cluster-config-file", f"{self.dir}/nodes-{port}.conf",
                     "--save", "", "--appendonly", "no", "--dir", self.dir],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if redis_is_ours(proc, port):
                    break
                used = {p for n in self.nodes for p in n}
                port, bus = free_port(), free_port()
                while port in used or bus in used or bus == port:
                    port, bus = free_port(), free_port()
                self.nodes[i] = (port, bus)
            else:
                self.stop()
                raise SystemExit("redis-server (cluster) exited at start on 5 pairs of free ports")
            self.procs.append(proc)
        self.url = "redis-cluster://" + ",".join(f"127.0.0.1:{p}" for p, _ in self.nodes)
        subprocess.run(["redis-cli", "--cluster", "create"] + [f"127.0.0.1:{p}" for p, _ in self.nodes]
                       + ["--cluster-yes"], check=True, capture_output=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            infos = [subprocess.run(["redis-cli", "-p", str(p), "cluster", "info"], capture_output=True,
                                    text=True).stdout for p, _ in self.nodes]
            if all("cluster_state:ok" in i for i in infos):
                return
            time.sleep(0.1)
        raise SystemExit("the Redis Cluster did not reach cluster_state:ok")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def start_demo(server, work, name, args, who="soak"):
    """Starts the demo server with `args` (port 0: it picks); returns (process, port, log file)."""
    demo_log = open(os.path.join(work, f"{name}.log"), "w+")
    demo = subprocess.Popen([server, "--port", "0", "--address", "127.0.0.1"] + args,
                            stdout=demo_log, stderr=subprocess.STDOUT)
    for _ in range(600):
        demo_log.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", demo_log.read())
        if m:
            return demo, int(m.group(1)), demo_log
        if demo.poll() is not None:
            break
        time.sleep(0.1)
    demo_log.seek(0)
    raise SystemExit(f"{who}: {name} did not start:\n" + demo_log.read())
