"""Shared helpers for the bench/ scripts (Python 3.11 standard library only).

- find (or build) libors_redis.so and compile c_tests/bench.c against it;
- start and stop a local cluster through c_tests/cluster.sh (plain) or
  c_tests/tls-servers.sh (TLS), stopping only what was started here;
- run ors_bench and redis-benchmark and parse what they print;
- read CPU use from /proc (redis-server processes, the whole machine).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_C = REPO / "c_tests" / "bench.c"
HEADER_DIR = REPO / "include"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------
# Building


def find_library(lib_dir: str | None) -> Path:
    """The folder holding libors_redis.so; builds it with cargo when the
    default folder (target/release) has none."""
    if lib_dir:
        d = Path(lib_dir).resolve()
        if not (d / "libors_redis.so").exists():
            raise BenchError(f"{d}/libors_redis.so not found")
    else:
        d = REPO / "target" / "release"
        if not (d / "libors_redis.so").exists():
            log("libors_redis.so not built yet: cargo build --release")
            subprocess.run(["cargo", "build", "--release", "--lib"], cwd=REPO, check=True)
    # The bench links by SONAME (libors_redis.so.0); cargo makes only the .so.
    so0 = d / "libors_redis.so.0"
    if not so0.exists():
        so0.symlink_to("libors_redis.so")
    return d


def describe_library(lib_dir: Path, label: str | None = None) -> str:
    """What was measured: --label if given, the repository HEAD when the
    library is the repository's own build, else the path and build time."""
    so = lib_dir / "libors_redis.so"
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(so.stat().st_mtime))
    if label:
        return f"{label} ({so}, built {built})"
    if lib_dir.resolve() == (REPO / "target" / "release").resolve():
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip() or "?"
        return f"target/release built {built} (repository HEAD {head})"
    return f"{so}, built {built}"


def build_bench(lib_dir: Path, out_dir: Path | None = None) -> Path:
    """Compiles c_tests/bench.c with the project's warning flags; returns the binary."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BenchError("no C compiler (cc) found")
    out_dir = out_dir or Path(tempfile.mkdtemp(prefix="ors-bench-"))
    out = out_dir / "ors_bench"
    cmd = [cc, "-O2", "-std=gnu99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", f"-I{HEADER_DIR}",
           str(BENCH_C), "-o", str(out), f"-L{lib_dir}", "-lors_redis", "-lpthread", f"-Wl,-rpath,{lib_dir}"]
    subprocess.run(cmd, check=True)
    return out


# ---------------------------------------------------------------------------
# Clusters


@dataclass
class Cluster:
    """A local cluster on PORT..PORT+5 run by c_tests/cluster.sh (or, with
    tls_dir, by c_tests/tls-servers.sh). Stops only what it started."""

    port: int
    data_dir: Path
    tls_dir: Path | None = None  # tls-servers.sh's ORS_TLS_DIR
    tls_bad_port: int | None = None
    reuse: bool = False  # use a running cluster, never start or stop it
    started: bool = False

    def _env(self) -> dict:
        env = dict(os.environ)
        if self.tls_dir:
            env.update(ORS_TLS_DIR=str(self.tls_dir), ORS_TLS_CLUSTER_PORT=str(self.port),
                       ORS_TLS_BAD_PORT=str(self.tls_bad_port or self.port + 10))
        else:
            env.update(ORS_CLUSTER_PORT=str(self.port), ORS_CLUSTER_DIR=str(self.data_dir))
        return env

    def _script(self) -> list[str]:
        if self.tls_dir:
            return [str(REPO / "c_tests" / "tls-servers.sh")]
        return [str(REPO / "c_tests" / "cluster.sh")]

    def start(self) -> None:
        if self.reuse:
            return
        log(f"starting {'TLS ' if self.tls_dir else ''}cluster on 127.0.0.1:{self.port}-{self.port + 5}")
        subprocess.run(self._script() + ["start"], env=self._env(), check=True, stdout=subprocess.DEVNULL)
        self.started = True

    def stop(self) -> None:
        if self.started:
            log(f"stopping cluster on {self.port}-{self.port + 5}")
            subprocess.run(self._script() + ["stop"], env=self._env(), check=False, stdout=subprocess.DEVNULL)
            self.started = False

    @property
    def certs(self) -> Path | None:
        return self.tls_dir / "certs" if self.tls_dir else None

    def cli_args(self) -> list[str]:
        if not self.certs:
            return []
        c = self.certs
        return ["--tls", "--cacert", str(c / "ca.pem"), "--cert", str(c / "client.pem"), "--key", str(c / "client.key")]

    def cli(self, port: int, *args: str) -> str:
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *self.cli_args(), *args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout

    def nodes(self) -> str:
        return f"127.0.0.1:{self.port};127.0.0.1:{self.port + 1};127.0.0.1:{self.port + 2}"

    def masters(self) -> list[int]:
        out = self.cli(self.port, "cluster", "nodes")
        ports = []
        for line in out.splitlines():
            f = line.split()
            if len(f) > 2 and "master" in f[2].split(","):
                ports.append(int(f[1].split("@")[0].rsplit(":", 1)[1]))
        return sorted(ports)

    def server_pids(self) -> list[int]:
        """pids of the six redis-server processes (from INFO, so it works for
        a reused cluster too)."""
        pids = []
        for p in range(self.port, self.port + 6):
            m = re.search(r"^process_id:(\d+)", self.cli(p, "info", "server"), re.M)
            if m:
                pids.append(int(m.group(1)))
        return pids

    def keyspace_stats(self, ports: list[int]) -> tuple[int, int]:
        hits = misses = 0
        for p in ports:
            out = self.cli(p, "info", "stats")
            h = re.search(r"^keyspace_hits:(\d+)", out, re.M)
            m = re.search(r"^keyspace_misses:(\d+)", out, re.M)
            hits += int(h.group(1)) if h else 0
            misses += int(m.group(1)) if m else 0
        return hits, misses


# ---------------------------------------------------------------------------
# CPU accounting from /proc


def proc_cpu_s(pids: list[int]) -> float:
    """user+system seconds consumed so far by these processes (all threads)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def proc_wakeups(pids: list[int]) -> int:
    """Voluntary context switches so far of these processes' main threads: for
    redis-server, how often its event loop went to sleep waiting for work."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def machine_busy_s() -> float:
    """CPU-seconds the whole machine spent busy (not idle, not iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / CLK_TCK


@dataclass
class CpuWindow:
    """CPU used by the servers and by the whole machine over a window."""

    server_pids: list[int]
    t0: float = 0.0
    srv0: float = 0.0
    busy0: float = 0.0
    seconds: float = 0.0
    server_s: float = 0.0
    busy_s: float = 0.0
    wake0: int = 0
    server_wakeups: int = 0

    def begin(self) -> None:
        self.t0, self.srv0, self.busy0 = time.monotonic(), proc_cpu_s(self.server_pids), machine_busy_s()
        self.wake0 = proc_wakeups(self.server_pids)

    def end(self) -> None:
        self.seconds = time.monotonic() - self.t0
        self.server_s = proc_cpu_s(self.server_pids) - self.srv0
        self.busy_s = machine_busy_s() - self.busy0
        self.server_wakeups = proc_wakeups(self.server_pids) - self.wake0


# ---------------------------------------------------------------------------
# Running the two benchmarks


def parse_kv(line: str) -> dict:
    out = {}
    for tok in line.split()[1:]:
        k, _, v = tok.partition("=")
        try:
            out[k] = float(v) if any(c in v for c in ".e") or not v.lstrip("-").isdigit() else int(v)
        except ValueError:
            out[k] = v
    return out


def run_ours(bench: Path, config: str, threads: int, size: int, seconds: float, warmup: float,
             server_pids: list[int], extra: list[str] | None = None, tls_dir: Path | None = None,
             prefix: list[str] | None = None) -> dict:
    """One timed run of ors_bench; returns its RESULT fields plus server and
    machine CPU over the measured window (the bench prints PHASE lines).
    prefix: run it under this command (e.g. taskset -c 1)."""
    cmd = [*(prefix or []), str(bench), "--config", config, "--threads", str(threads), "--value-size", str(size),
           "--duration", str(seconds), "--warmup", str(warmup), "--phase-lines", "--quiet", *(extra or [])]
    if tls_dir:
        cmd += ["--tls", str(tls_dir)]
    win = CpuWindow(server_pids)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = None
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("PHASE measure"):
            win.begin()
        elif line.startswith("PHASE stop"):
            win.end()
        elif line.startswith("RESULT "):
            result = parse_kv(line)
    err = p.stderr.read() if p.stderr else ""
    rc = p.wait(timeout=120)
    if rc != 0 or result is None:
        raise BenchError(f"ors_bench failed (exit {rc}): {' '.join(cmd)}\n{err}")
    calls = max(result["calls"], 1)
    result["server_cpu_us_per_op"] = win.server_s * 1e6 / calls
    result["server_wakeups_per_op"] = win.server_wakeups / calls
    result["foreign_cores"] = max(0.0, (win.busy_s - win.server_s) / max(win.seconds, 1e-9)
                                  - result["cpu_us_per_op"] * calls / 1e6 / max(win.seconds, 1e-9))
    return result


def run_redis_benchmark(cluster: Cluster, cmd_name: str, clients: int, size: int, requests: int,
                        keyspace: int, server_pids: list[int], tls: bool = False,
                        threads: int | None = None) -> dict:
    """One redis-benchmark --cluster run of SET or GET; CPU from the child's
    rusage (os.wait4). threads: its --threads (event-loop threads; without
    it, --cluster runs one per master and spreads the clients over them)."""
    cmd = ["redis-benchmark", "--cluster", "-h", "127.0.0.1", "-p", str(cluster.port), "-P", "1",
           "-c", str(clients), "-d", str(size), "-t", cmd_name.lower(), "-r", str(keyspace),
           "-n", str(requests), "--csv"]
    if threads:
        cmd += ["--threads", str(threads)]
    if tls:
        cmd += cluster.cli_args()
    win = CpuWindow(server_pids)
    win.begin()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.stdout is not None
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    win.end()
    row = None
    for line in out.splitlines():
        if line.startswith(f'"{cmd_name.upper()}"'):
            row = [x.strip('"') for x in line.split(",")]
    if p.returncode != 0 or row is None:
        raise BenchError(f"redis-benchmark failed (exit {p.returncode}): {' '.join(cmd)}\n{out}")
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    cpu_s = ru.ru_utime + ru.ru_stime
    return {
        "ops_per_sec": float(row[1]),
        "p50_us": float(row[4]) * 1000,
        "p99_us": float(row[6]) * 1000,
        "max_us": float(row[7]) * 1000,
        "requests": requests,
        "cpu_us_per_op": cpu_s * 1e6 / requests,
        "user_us_per_op": ru.ru_utime * 1e6 / requests,
        "sys_us_per_op": ru.ru_stime * 1e6 / requests,
        "csw_per_op": (ru.ru_nvcsw + ru.ru_nivcsw) / requests,
        "server_cpu_us_per_op": win.server_s * 1e6 / requests,
        "server_wakeups_per_op": win.server_wakeups / requests,
        "foreign_cores": max(0.0, (win.busy_s - win.server_s - cpu_s) / max(win.seconds, 1e-9)),
        "seconds": win.seconds,
    }


def median(xs: list[float]) -> float:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so that `finally` stops the servers."""
    def raise_interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, raise_interrupt)


@dataclass
class Machine:
    cores: int = field(default_factory=lambda: os.cpu_count() or 0)

    @staticmethod
    def describe() -> str:
        model = ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        model = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        rb = subprocess.run(["redis-benchmark", "--version"], capture_output=True, text=True).stdout.strip()
        rs = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
        return f"{os.cpu_count()} cores ({model}); {rs.split(' sha=')[0]}; {rb.split(' (')[0]}"
