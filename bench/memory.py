#!/usr/bin/env python3
"""Memory of ors-redis in a process, measured with c_tests/bench.c (ors_bench).

    bench/memory.py [--duration 60] [--tls]

1. The RSS cost of one thread's connection set: ors_bench --rss-probe 32 starts
   32 threads that wait; then, one at a time, each makes its first calls
   (session cycles over every master, so it opens one connection per master)
   and the RSS before and after is read from /proc/self/statm. With --tls,
   the same against the TLS cluster.
2. RSS over a long run: T = 16, 1 KiB values, put/get/del, sampled every
   --every seconds for --duration seconds (bench/memory-results.md is from a
   5-minute run: --duration 300).

Writes bench/memory-results.md (and .json). Starts and stops its cluster(s)
like compare.py (ports 7110.. plain, 7120.. TLS); Python 3.11 stdlib only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

HERE = Path(__file__).resolve().parent


def probe(bench: Path, config: str, threads: int, tls_dir: Path | None) -> dict:
    cmd = [str(bench), "--config", config, "--rss-probe", str(threads)]
    if tls_dir:
        cmd += ["--tls", str(tls_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    res = next((bl.parse_kv(line) for line in r.stdout.splitlines() if line.startswith("RESULT ")), None)
    if r.returncode != 0 or res is None:
        raise bl.BenchError(f"rss probe failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    deltas = next((line.split(":", 1)[1].split() for line in r.stdout.splitlines()
                   if "per-thread RSS added" in line), [])
    res["deltas_kib"] = [int(x) for x in deltas]
    return res


def long_run(bench: Path, config: str, threads: int, duration: float, every: float) -> dict:
    cmd = [str(bench), "--config", config, "--threads", str(threads), "--value-size", "1024",
           "--duration", str(duration), "--warmup", "1", "--rss-every", str(every), "--quiet"]
    samples = []
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = None
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("RSS "):
            kv = bl.parse_kv(line)
            samples.append(kv)
            bl.log(f"t={kv['t']:>5} s  RSS {kv['rss_kib']} KiB  calls {kv.get('calls', 0):,}")
        elif line.startswith("RESULT "):
            result = bl.parse_kv(line)
    err = p.stderr.read() if p.stderr else ""
    if p.wait() != 0 or result is None:
        raise bl.BenchError(f"long run failed: {' '.join(cmd)}\n{err}")
    result["samples"] = samples
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60, help="seconds of the T=16 run (default 60; bench/memory-results.md: 300)")
    ap.add_argument("--every", type=float, default=10, help="RSS sample interval in seconds (10)")
    ap.add_argument("--threads", type=int, default=16, help="threads of the long run (16)")
    ap.add_argument("--probe-threads", type=int, default=32, help="threads of the RSS probe (32)")
    ap.add_argument("--tls", action="store_true", help="also probe a TLS connection set (TLS cluster on --tls-port)")
    ap.add_argument("--lib-dir", help="folder with libors_redis.so (default target/release, built if missing)")
    ap.add_argument("--port", type=int, default=7110)
    ap.add_argument("--cluster-dir", default="/tmp/ors-bench-cluster")
    ap.add_argument("--tls-port", type=int, default=7120)
    ap.add_argument("--tls-bad-port", type=int, default=7130)
    ap.add_argument("--tls-dir", default="/tmp/bench-tls")
    ap.add_argument("--reuse", action="store_true", help="use clusters already running; never start or stop them")
    ap.add_argument("--keep", action="store_true", help="leave the clusters running afterwards")
    ap.add_argument("--out", default=str(HERE / "memory-results.md"))
    ap.add_argument("--label", help="what the library is, for the report (e.g. 'commit 95e9f02')")
    args = ap.parse_args()
    bl.install_signal_handlers()

    plain = bl.Cluster(args.port, Path(args.cluster_dir), reuse=args.reuse)
    tls = bl.Cluster(args.tls_port, Path(args.tls_dir), tls_dir=Path(args.tls_dir),
                     tls_bad_port=args.tls_bad_port, reuse=args.reuse)
    try:
        lib = bl.find_library(args.lib_dir)
        bench = bl.build_bench(lib)
        library = bl.describe_library(lib, args.label)
        plain.start()
        config = f"redis-nodes={plain.nodes()} cluster-name=bench"
        probes = {"plain": probe(bench, config, args.probe_threads, None)}
        bl.log(f"plain: {probes['plain']['per_thread_kib_mean']} KiB per thread")
        if args.tls:
            tls.start()
            probes["TLS"] = probe(bench, f"redis-nodes={tls.nodes()} cluster-name=bench", args.probe_threads,
                                  tls.certs)
            bl.log(f"TLS: {probes['TLS']['per_thread_kib_mean']} KiB per thread")
            if not args.keep:
                tls.stop()
        run = long_run(bench, config, args.threads, args.duration, args.every)
    except bl.BenchError as e:
        print(f"memory.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("memory.py: interrupted (servers stopped)", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            tls.stop()
            plain.stop()

    L = ["# Memory", "", f"Machine: {bl.Machine.describe()}. Library: {library}. "
         "RSS from /proc/self/statm of the ors_bench process.", "",
         f"## One thread's connection set ({args.probe_threads} threads, one at a time)", "",
         "| transport | mean KiB per thread | median | min | max | RSS with idle threads | with all sets "
         "| after the threads exited | sockets |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, p in probes.items():
        L.append(f"| {name} | {p['per_thread_kib_mean']} | {p['per_thread_kib_median']} | {p['per_thread_kib_min']} "
                 f"| {p['per_thread_kib_max']} | {p['rss_kib_idle']} | {p['rss_kib_all']} | {p['rss_kib_after_exit']} "
                 f"| {p['sockets_with_all']} |")
    L += ["", "Each thread made " + str(probes["plain"]["probe_cycles"]) + " put/get/del cycles of 1 KiB values "
          "(enough to reach all 3 masters: 3 sockets per thread; the main thread's 3 are counted in the sockets "
          "column). The figure includes what the thread's first calls touch besides the library's own state: "
          "its glibc malloc arena (glibc gives each new thread an arena, up to 8 per core) and the stack pages "
          "the calls reach. Per-thread deltas: "
          + "; ".join(f"{n}: {' '.join(map(str, p['deltas_kib']))}" for n, p in probes.items()) + ".", ""]
    s = run["samples"]
    L += [f"## RSS over a {args.duration:g} s run at T = {args.threads} (1 KiB, put/get/del)", "",
          "| t (s) | RSS KiB | calls so far |", "|---:|---:|---:|"]
    for x in s:
        calls = f"{x['calls']:,}" if "calls" in x else "(end)"
        L.append(f"| {x['t']:g} | {x['rss_kib']} | {calls} |")
    if s:
        rss = [x["rss_kib"] for x in s]
        after_first = [x["rss_kib"] for x in s if x["t"] >= args.every]
        L += ["", f"{run['calls']:,} calls at {run['ops_per_sec']:,.0f}/s, {run['errors']} errors. RSS min {min(rss)} "
              f"KiB, max {max(rss)} KiB; from the sample at t = {args.every:g} s to the last: "
              f"{(after_first[-1] - after_first[0]) if after_first else 0:+d} KiB."]
    md = "\n".join(L) + "\n"
    print(md)
    Path(args.out).write_text(md)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"probes": probes, "run": run, "args": vars(args)},
                                                              indent=1))
    bl.log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
