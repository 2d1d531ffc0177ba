#!/usr/bin/env python3
"""Compressed values on the generated corpus (bench/corpus.py): what each
setting saves in Redis and what it costs the calls.

    bench/compression.py [--port 7130] [--count 2000] [--seed 29]
                         [--settings off,lz4,zstd-1,zstd-3,zstd-9,zstd-3-dict]
                         [--threads 1,4,16] [--seconds 3] [--rounds 1]
                         [--reuse] [--smoke] [--no-write] [--pin]

1. Memory, measured on the server: for each setting, the corpus's sessions
   are put through the library (ctypes), and the growth of `used_memory`
   over every master (INFO memory) is divided by the sessions put; they are
   deleted again before the next setting. Two sets: the whole corpus (sizes
   500 B .. 64 KiB), and as many sessions of the corpus's median size.
2. Throughput: c_tests/bench.c (ors_bench) with --value-file (the corpus's
   median session), the 1:1:1 put/get/del mix, at each thread count, every
   setting in the same run right after `off`, so each ratio is against `off`
   measured minutes apart, not days; client CPU per call from getrusage.
3. Dictionaries: `zstd-3-dict` is level 3 with a dictionary that
   `ors-redis dictionary train` (target/release/ors-redis, feature cli)
   trained on another seed's sessions, stored in the cluster and handed to
   the library (`compression-dictionary`, `compression-min-bytes=64`): its
   memory and throughput are measured as every other setting's. Then, on
   the sessions up to 2 KiB, zstd's own command line with and without a
   dictionary, per file (`zstd --train`), as a second opinion.

Writes bench/compression-results.md and .json (not with --smoke or
--no-write). --smoke: a short run (c_tests/bench-smoke.sh) that checks that
every setting reads back what it wrote and that zstd uses less memory.
Starts and stops its own cluster on --port..--port+5 (c_tests/cluster.sh),
or uses a running one with --reuse. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402
import corpus  # noqa: E402

HERE = Path(__file__).resolve().parent


# The dictionary id of the zstd-N-dict settings (train_dictionary sets it).
DICTIONARY: dict[str, str] = {}


def setting_config(setting: str) -> str:
    if setting == "off":
        return "compression=off"
    if setting == "lz4":
        return "compression=lz4"
    m = re.fullmatch(r"zstd-(\d+)(-dict)?", setting)
    if not m:
        raise bl.BenchError(f"unknown setting {setting!r} (off, lz4, zstd-N, zstd-N-dict)")
    if m.group(2):
        if "id" not in DICTIONARY:
            raise bl.BenchError(f"{setting}: no dictionary trained")
        return (f"compression=zstd compression-level={m.group(1)} "
                f"compression-dictionary={DICTIONARY['id']} compression-min-bytes=64")
    return f"compression=zstd compression-level={m.group(1)}"


class Library:
    """libors_redis.so through ctypes: init, put, get, del, shutdown."""

    def __init__(self, lib_dir: Path):
        self.lib = ctypes.CDLL(str(lib_dir / "libors_redis.so"))
        self.lib.ors_session_put.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32]
        self.lib.ors_session_get.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                                             ctypes.POINTER(ctypes.c_size_t)]
        self.lib.ors_session_del.argtypes = [ctypes.c_char_p]
        self.lib.ors_free.argtypes = [ctypes.c_void_p]
        self.lib.ors_last_error.restype = ctypes.c_char_p

    def check(self, status: int, what: str) -> None:
        if status != 0:
            raise bl.BenchError(f"{what}: status {status}: {self.lib.ors_last_error().decode(errors='replace')}")

    def init(self, config: str) -> None:
        self.check(self.lib.ors_redis_init(config.encode()), "ors_redis_init")

    def shutdown(self) -> None:
        self.lib.ors_redis_shutdown()

    def put(self, sid: bytes, value: bytes) -> None:
        self.check(self.lib.ors_session_put(sid, value, len(value), 600), "put")

    def get(self, sid: bytes) -> bytes:
        data, n = ctypes.c_void_p(), ctypes.c_size_t()
        self.check(self.lib.ors_session_get(sid, ctypes.byref(data), ctypes.byref(n)), "get")
        out = ctypes.string_at(data, n.value)
        self.lib.ors_free(data)
        return out

    def delete(self, sid: bytes) -> None:
        self.lib.ors_session_del(sid)


def used_memory(cluster: bl.Cluster, masters: list[int]) -> int:
    total = 0
    for p in masters:
        m = re.search(r"^used_memory:(\d+)", cluster.cli(p, "info", "memory"), re.M)
        if not m:
            raise bl.BenchError(f"no used_memory from 127.0.0.1:{p}")
        total += int(m.group(1))
    return total


def settle(cluster: bl.Cluster, masters: list[int]) -> None:
    """Waits (2 s at most) until no master frees deleted values in the
    background (lazyfree_pending_objects 0: Valkey 8 frees a deleted key
    lazily by default), so that used_memory does not fall while a setting
    is measured."""
    for _ in range(40):
        pending = [re.search(r"^lazyfree_pending_objects:(\d+)", cluster.cli(p, "info", "memory"), re.M)
                   for p in masters]
        if all(m is None or m.group(1) == "0" for m in pending):
            return
        time.sleep(0.05)


def memory_per_session(lib: Library, cluster: bl.Cluster, masters: list[int], setting: str,
                       sessions: list[bytes], tag: str, verify: int) -> float:
    """used_memory growth per session for `sessions` put with `setting`."""
    lib.init(f"redis-nodes={cluster.nodes()} cluster-name=bench-cmp {setting_config(setting)}")
    try:
        ids = [f"{tag}-{setting}-{i}".encode() for i in range(len(sessions))]
        time.sleep(0.2)
        settle(cluster, masters)
        before = used_memory(cluster, masters)
        for sid, value in zip(ids, sessions):
            lib.put(sid, value)
        after = used_memory(cluster, masters)
        for sid, value in list(zip(ids, sessions))[:verify]:
            if lib.get(sid) != value:
                raise bl.BenchError(f"{setting}: session {sid!r} read back different bytes")
        for sid in ids:
            lib.delete(sid)
    finally:
        lib.shutdown()
    return (after - before) / len(sessions)


def throughput(bench: Path, cluster: bl.Cluster, setting: str, threads: int, seconds: float,
               value_file: Path, pids: list[int], pin: bool) -> dict:
    config = f"redis-nodes={cluster.nodes()} cluster-name=bench-cmp {setting_config(setting)}"
    return bl.run_ours(bench, config, threads, 0, seconds, min(1.0, seconds / 3), pids,
                       extra=["--value-file", str(value_file)],
                       prefix=["taskset", "-c", "1"] if pin else None)


def pin_servers(pids: list[int]) -> None:
    """--pin: every Redis server (all its threads) on CPU 0; the client runs
    on CPU 1. ORS's hosts do not run the Redis nodes: what a call costs the
    calling host's CPU should not be taken from Redis's, as it is when both
    share the same two cores."""
    if (os.cpu_count() or 1) < 2:
        raise bl.BenchError("--pin needs 2 CPUs")
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(pid)], check=True, capture_output=True)


def train_dictionary(lib: Library, lib_dir: Path, cluster: bl.Cluster, seed: int, count: int) -> dict:
    """Puts another seed's sessions (plain), has `ors-redis dictionary train`
    train and store a dictionary on them, deletes them again."""
    command = lib_dir / "ors-redis"
    if not command.exists():
        build = ["cargo", "build", "--release", "--features", "cli"]
        bl.log(f"{command} not built yet: {' '.join(build)}")
        subprocess.run(build, cwd=bl.REPO, check=True)
    config = f"redis-nodes={cluster.nodes()} cluster-name=bench-cmp"
    sessions = corpus.generate(seed + 100, count)
    ids = [f"train-{i}".encode() for i in range(len(sessions))]
    lib.init(config)
    try:
        for sid, value in zip(ids, sessions):
            lib.put(sid, value)
    finally:
        lib.shutdown()
    r = subprocess.run([str(command), "--json", "dictionary", "train", "--sample", str(count)],
                       env={**os.environ, "ORS_REDIS_CONFIG": config}, capture_output=True, text=True)
    if r.returncode != 0:
        raise bl.BenchError(f"ors-redis dictionary train: {r.stderr.strip()}")
    result = json.loads(r.stdout)["result"]
    lib.init(config)
    try:
        for sid in ids:
            lib.delete(sid)
    finally:
        lib.shutdown()
    DICTIONARY["id"] = result["id"]
    bl.log(f"dictionary {result['id']}: {result['dictionary_bytes']} B, trained on {result['trained_on']} "
           f"sessions of seed {seed + 100}")
    return result


def dictionary_gain(seed: int, count: int, work: Path) -> dict | None:
    """Level 3 with a dictionary trained on one seed's small sessions,
    against level 3 without, on another seed's (zstd's command line)."""
    zstd = shutil.which("zstd")
    if not zstd:
        return None
    small = lambda s: [v for v in s if len(v) <= 2048]  # noqa: E731
    train = small(corpus.generate(seed + 100, count * 2))
    test = small(corpus.generate(seed + 200, count))
    tdir, edir = work / "train", work / "test"
    for d, vals in ((tdir, train), (edir, test)):
        d.mkdir()
        for i, v in enumerate(vals):
            (d / f"s{i:05d}").write_bytes(v)
    dic = work / "dict"
    subprocess.run([zstd, "-q", "--train", "-r", str(tdir), "-o", str(dic), "--maxdict=16384"], check=True)

    def total(extra: list[str], out: Path) -> int:
        out.mkdir()
        subprocess.run([zstd, "-q", "-3", "-r", str(edir), "--output-dir-flat", str(out), *extra], check=True)
        return sum(f.stat().st_size for f in out.iterdir())

    given = sum(len(v) for v in test)
    plain = total([], work / "plain")
    with_dict = total(["-D", str(dic)], work / "dict-out")
    n = len(test)
    # The envelope's 18 bytes per value, with or without a dictionary.
    saved = 1 - (plain + 18 * n) / given
    saved_dict = 1 - (with_dict + 18 * n) / given
    return {"sessions": n, "given_bytes": given, "median_bytes": statistics.median(len(v) for v in test),
            "dictionary_bytes": dic.stat().st_size, "zstd3_bytes": plain, "zstd3_dict_bytes": with_dict,
            "saved_pct": round(100 * saved, 1), "saved_with_dict_pct": round(100 * saved_dict, 1),
            "points_gained": round(100 * (saved_dict - saved), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("ORS_CMP_PORT", "7130")))
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=29)
    ap.add_argument("--settings", default="off,lz4,zstd-1,zstd-3,zstd-9,zstd-3-dict")
    ap.add_argument("--threads", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=1, help="throughput runs per point (the median is kept)")
    ap.add_argument("--lib-dir")
    ap.add_argument("--reuse", action="store_true", help="use a cluster already running on --port")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--pin", action="store_true",
                    help="Redis servers on CPU 0, the client on CPU 1 (writes compression-results-pinned.*)")
    args = ap.parse_args()
    if args.smoke:
        args.count, args.seconds, args.threads, args.settings = 150, 0.4, "1,4", "off,lz4,zstd-3,zstd-3-dict"
    settings = args.settings.split(",")
    if settings[0] != "off":
        settings.insert(0, "off")
    threads = [int(t) for t in args.threads.split(",")]

    lib_dir = bl.find_library(args.lib_dir)
    work = Path(tempfile.mkdtemp(prefix="ors-cmp-"))
    bench = bl.build_bench(lib_dir, work)
    cluster = bl.Cluster(port=args.port, data_dir=work / "cluster", reuse=args.reuse)
    sessions = corpus.generate(args.seed, args.count)
    median = corpus.median_session(sessions)
    at_median = corpus.generate(args.seed + 1, args.count, size=len(median))
    value_file = work / "median-session.json"
    value_file.write_bytes(median)
    sizes = sorted(len(s) for s in sessions)
    bl.log(f"corpus: {len(sessions)} sessions, seed {args.seed}, median {len(median)} B, "
           f"{sizes[0]}..{sizes[-1]} B")
    lib = Library(lib_dir)
    result: dict = {"corpus": {"seed": args.seed, "sessions": len(sessions), "median_bytes": len(median),
                               "min_bytes": sizes[0], "max_bytes": sizes[-1],
                               "mean_bytes": round(statistics.mean(sizes))},
                    "memory": {}, "throughput": {}}
    try:
        cluster.start()
        masters = cluster.masters()
        pids = cluster.server_pids()
        if args.pin:
            pin_servers(pids)
        for s in settings:
            # Trained when first needed: its sessions, put and deleted, are
            # not under any other setting's measurement.
            if s.endswith("-dict") and "trained" not in result:
                result["trained"] = train_dictionary(lib, lib_dir, cluster, args.seed, max(args.count, 200))
            corpus_b = memory_per_session(lib, cluster, masters, s, sessions, "c", verify=len(sessions))
            median_b = memory_per_session(lib, cluster, masters, s, at_median, "m", verify=20)
            result["memory"][s] = {"corpus": round(corpus_b), "median": round(median_b)}
            bl.log(f"memory {s}: {corpus_b:.0f} B per corpus session, {median_b:.0f} B at the median")
        for t in threads:
            for s in settings:
                runs = [throughput(bench, cluster, s, t, args.seconds, value_file, pids, args.pin)
                        for _ in range(args.rounds)]
                for r in runs:
                    if r["errors"]:
                        raise bl.BenchError(f"{s} T={t}: {r['errors']} errors")
                ops = statistics.median(r["ops_per_sec"] for r in runs)
                cpu = statistics.median(r["cpu_us_per_op"] for r in runs)
                get_p50 = statistics.median(r["get_p50_us"] for r in runs)
                put_p50 = statistics.median(r["put_p50_us"] for r in runs)
                result["throughput"].setdefault(str(t), {})[s] = {
                    "ops_per_sec": round(ops), "cpu_us_per_op": round(cpu, 2),
                    "put_p50_us": put_p50, "get_p50_us": get_p50}
                bl.log(f"T={t} {s}: {ops:.0f} calls/s, client CPU {cpu:.1f} us/call")
    finally:
        cluster.stop()
    if not args.smoke:
        result["dictionary"] = dictionary_gain(args.seed, args.count, work)

    off = result["memory"]["off"]
    lines = [f"# Compressed values on the corpus (bench/compression.py)\n",
             f"Corpus: bench/corpus.py --seed {args.seed}, {len(sessions)} sessions, median {len(median)} B "
             f"({sizes[0]} .. {sizes[-1]} B, mean {result['corpus']['mean_bytes']} B). "
             f"Machine: {os.cpu_count()} cores shared with other work; Redis on loopback"
             + ("; pinned (--pin): the Redis servers on CPU 0, the client on CPU 1, so that the "
                "client's CPU per call is not taken from Redis's (ORS's hosts do not run the Redis "
                "nodes).\n" if args.pin else "; the Redis servers and the client share the cores.\n"),
             "## Redis used_memory per session (measured on the server)\n",
             "| setting | whole corpus | vs off | median-size sessions | vs off |", "|---|---|---|---|---|"]
    for s, m in result["memory"].items():
        lines.append(f"| {s} | {m['corpus']} B | {100 * (m['corpus'] / off['corpus'] - 1):+.1f}% | "
                     f"{m['median']} B | {100 * (m['median'] / off['median'] - 1):+.1f}% |")
    lines += ["", f"## Throughput, put/get/del of the median session, ratio to off in the same run "
              f"({args.seconds:g} s per point)\n",
              "| T | setting | calls/s | vs off | client CPU us/call | put p50 us | get p50 us |",
              "|---|---|---|---|---|---|---|"]
    for t, per in result["throughput"].items():
        base = per["off"]["ops_per_sec"]
        for s, r in per.items():
            lines.append(f"| {t} | {s} | {r['ops_per_sec']} | {r['ops_per_sec'] / base:.2f} | "
                         f"{r['cpu_us_per_op']} | {r['put_p50_us']} | {r['get_p50_us']} |")
    t = result.get("trained")
    if t:
        lines += ["", "## The dictionary of zstd-3-dict\n",
                  f"`ors-redis dictionary train --sample {t['trained_on'] + t['measured_on']}` on "
                  f"bench/corpus.py --seed {args.seed + 100} (not the measured seed): "
                  f"{t['dictionary_bytes']} bytes, trained on {t['trained_on']} sessions. On the "
                  f"{t['small']['sessions']} held-out sessions up to 2 KiB, level 3 stores "
                  f"{t['small']['zstd_bytes']} B without it and {t['small']['zstd_dictionary_bytes']} B "
                  f"with it, of {t['small']['given_bytes']} B given."]
    d = result.get("dictionary")
    if d:
        lines += ["", "## zstd dictionary, zstd's command line (a second opinion)\n",
                  f"{d['sessions']} sessions up to 2 KiB (median {d['median_bytes']:.0f} B), a "
                  f"{d['dictionary_bytes']}-byte dictionary trained on another seed's: level 3 saves "
                  f"{d['saved_pct']}% without it, {d['saved_with_dict_pct']}% with it "
                  f"({d['points_gained']:+} points), envelope included."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.smoke:
        for s in settings[1:]:
            if result["memory"][s]["corpus"] >= off["corpus"]:
                print(f"FAIL {s} does not use less memory than off", file=sys.stderr)
                return 1
        print("compression smoke: every setting read back what it wrote; each used less memory than off")
    elif not args.no_write:
        name = "compression-results-pinned" if args.pin else "compression-results"
        (HERE / f"{name}.md").write_text(text)
        (HERE / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    bl.install_signal_handlers()
    try:
        sys.exit(main())
    except bl.BenchError as e:
        print(f"compression.py: {e}", file=sys.stderr)
        sys.exit(1)
