#!/usr/bin/env python3
"""ors-redis against redis-benchmark on one local cluster, in one run.

    bench/compare.py                 ours vs redis-benchmark --cluster, T = 1, 4, 16, 1 KiB and 4 KiB
    bench/compare.py --tls           the cost of TLS for ors-redis (and, for reference, redis-benchmark)

Default mode: for each of --alternations passes, for each value size and
thread count T, it runs (in an order rotated from pass to pass)
  - c_tests/bench.c (ors_bench): T threads, put -> get (checked) -> del over
    fresh session ids, --warmup then --seconds measured;
  - redis-benchmark --cluster -P 1 -c T -t set, then -t get, same value size,
    over a prepopulated -r keyspace (GET hits are checked with INFO stats),
    with -n chosen to last about --seconds;
  - like for like (unless --no-like-for-like): ors_bench with writes only
    (--mix 1:0:1) and with reads (--mix 1:50:1), compared with the SET and
    the GET run; and, for T above the number of masters,
    redis-benchmark --threads T (one client per event-loop thread, as each
    ORS worker waits for its own reply);
and prints the medians with ratios ours / redis-benchmark; writes
bench/results.md, bench/results.json and bench/throughput.svg.

--tls mode: a plain cluster and a TLS cluster (c_tests/tls-servers.sh), ours at
T = 1 and 4 with 1 KiB values, plain vs TLS; writes bench/tls-results.md/.json.

The library: --lib-dir, else target/release (built with cargo if missing).
ors_bench is compiled from c_tests/bench.c with cc into a temporary folder.
Clusters are started here (c_tests/cluster.sh, ports --port..+5) and stopped
at the end, also on Ctrl-C; --reuse uses a cluster already running on --port.
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

HERE = Path(__file__).resolve().parent
KEYSPACE = 1000  # redis-benchmark -r: keys per master hash tag

RB_NOTE = (
    "redis-benchmark 7.0 in --cluster mode binds each client to one master and uses one hash tag per "
    "master (keys `key:{tag}:<rand>`): with -c 1 every request goes to the same master, with -c 4 the "
    "masters get 2/1/1 clients. Unless told --threads, it runs one event-loop thread per master (3 here) "
    "and spreads its clients over them, so at -c 16 each thread multiplexes 5-6 clients and is often awake "
    "when a reply comes. ors-redis spreads every thread's calls over all masters by session id, as ORS does, "
    "and each ORS thread blocks on its own call."
)

# The like-for-like runs: ors_bench with only writes (a put creating the
# session's key, a delete removing it) beside redis-benchmark's SET run, and
# with 50 gets per session (96% of calls) beside its GET run.
WRITES_MIX = "1:0:1"
READS_MIX = "1:50:1"


def mix_note(mix: str) -> str:
    p, g, d = (int(x) for x in mix.split(":"))
    writes, calls = p + d, p + g + d
    return (
        f"ors-redis runs, per session, {p} put (SET ... EX), {g} get and {d} del (UNLINK) (--mix {mix}): "
        f"{writes} writes in {calls} calls ({100 * writes / calls:.0f}%), each replicated and appended to the "
        "AOF, on a new key with an expiry; redis-benchmark's figure is the mean of a SET run and a GET run "
        "(one write in two), overwriting a prepopulated keyspace. Our client CPU includes the benchmark's own "
        "work per call (session id, two clock_gettime, histogram, memcmp of the value read)."
    )


def fmt(x: float, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# ---------------------------------------------------------------------------
# redis-benchmark helpers


class RbRunner:
    """Runs redis-benchmark with -n sized from the rate it measured last."""

    def __init__(self, cluster: bl.Cluster, pids: list[int], seconds: float, tls: bool = False):
        self.cluster, self.pids, self.seconds, self.tls = cluster, pids, seconds, tls
        self.rate: dict[tuple, float] = {}

    def requests_for(self, cmd: str, clients: int, size: int, threads: int | None = None) -> int:
        rate = self.rate.get((cmd, clients, size, threads), 5000.0 * min(clients, 4))
        return max(5000, int(rate * self.seconds))

    def run(self, cmd: str, clients: int, size: int, requests: int | None = None,
            threads: int | None = None) -> dict:
        n = requests or self.requests_for(cmd, clients, size, threads)
        masters = self.cluster.masters() if cmd == "GET" else []
        before = self.cluster.keyspace_stats(masters) if masters else (0, 0)
        r = bl.run_redis_benchmark(self.cluster, cmd, clients, size, n, KEYSPACE, self.pids, tls=self.tls,
                                   threads=threads)
        if masters:
            after = self.cluster.keyspace_stats(masters)
            hits, misses = after[0] - before[0], after[1] - before[1]
            r["hit_ratio"] = hits / max(hits + misses, 1)
        self.rate[(cmd, clients, size, threads)] = r["ops_per_sec"]
        return r

    def prepopulate(self, size: int) -> None:
        """SETs every key of the keyspace of every master's hash tag (-c 3:
        one client per master; 30 x keyspace random SETs leave ~e^-10 unset)."""
        bl.run_redis_benchmark(self.cluster, "SET", 3, size, 30 * 3 * KEYSPACE, KEYSPACE, self.pids, tls=self.tls)


# ---------------------------------------------------------------------------
# Default mode: ours vs redis-benchmark

# The runs of one configuration. ours: ors_bench with --mix (None: the
# command line's); SET/GET: redis-benchmark as it runs by default; SETt/GETt:
# redis-benchmark --threads T, one client per event-loop thread, which is
# ORS's model (each thread waits for its own reply).
OURS_MIX = {"ours": None, "ours-w": WRITES_MIX, "ours-r": READS_MIX}
RB_TOOLS = {"SET": ("SET", False), "GET": ("GET", False), "SETt": ("SET", True), "GETt": ("GET", True)}


def tools_for(threads: int, masters: int, like_for_like: bool) -> list[str]:
    """The runs for one (size, T). The per-thread redis-benchmark runs only
    differ from its default when T exceeds its one thread per master."""
    tools = ["ours", "SET", "GET"]
    if like_for_like:
        tools += ["ours-w", "ours-r"]
        if threads > masters:
            tools += ["SETt", "GETt"]
    return tools


def compare(args, bench: Path) -> int:
    cluster = bl.Cluster(args.port, Path(args.cluster_dir), reuse=args.reuse)
    records: list[dict] = []
    try:
        cluster.start()
        pids = cluster.server_pids()
        config = f"redis-nodes={cluster.nodes()} cluster-name=bench"
        rb = RbRunner(cluster, pids, args.seconds)
        n_masters = len(cluster.masters())
        started = time.monotonic()
        bl.log("calibrating redis-benchmark -n (not recorded)")
        for size in args.sizes:
            rb.prepopulate(size)
            for t in args.threads:
                for tool in tools_for(t, n_masters, args.like_for_like):
                    if tool in RB_TOOLS:
                        cmd, per_thread = RB_TOOLS[tool]
                        rb.run(cmd, t, size, requests=max(5000, 3000 * t), threads=t if per_thread else None)
        for alt in range(args.alternations):
            for size in args.sizes:
                rb.prepopulate(size)
                for t in args.threads:
                    order = tools_for(t, n_masters, args.like_for_like)
                    k = alt % len(order)
                    order = order[k:] + order[:k]
                    for tool in order:
                        if tool in OURS_MIX:
                            mix = OURS_MIX[tool] or args.mix
                            r = bl.run_ours(bench, config, t, size, args.seconds, args.warmup, pids,
                                            extra=["--mix", mix])
                            if r["errors"]:
                                raise bl.BenchError(f"ors_bench reported {r['errors']} errors")
                        else:
                            cmd, per_thread = RB_TOOLS[tool]
                            r = rb.run(cmd, t, size, threads=t if per_thread else None)
                        r.update(alt=alt, size=size, threads=t, tool=tool)
                        records.append(r)
                        bl.log(f"pass {alt + 1}/{args.alternations} {size} B T={t} {tool:4}: "
                               f"{r['ops_per_sec']:,.0f} ops/s, CPU {r['cpu_us_per_op']:.2f} us/op"
                               + (f", hits {r['hit_ratio']:.4f}" if "hit_ratio" in r else ""))
        elapsed = time.monotonic() - started
    finally:
        if not args.keep:
            cluster.stop()

    return report(records, args, elapsed, bl.Machine.describe())


def report(records: list[dict], args, elapsed: float, machine: str, saved_args: dict | None = None) -> int:
    """Writes the tables, the data and the chart. saved_args: the arguments
    to record in results.json (a redraw keeps those of the run measured)."""
    rows = aggregate(records, args.sizes, args.threads, args.mix)
    md = render_markdown(rows, args, elapsed, machine)
    print(md)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(md)
    saved = saved_args or {k: v for k, v in vars(args).items() if k != "from_json"}
    (out / "results.json").write_text(json.dumps({"machine": machine, "elapsed": elapsed, "args": saved,
                                                  "records": records, "rows": rows}, indent=1))
    write_svg(out / "throughput.svg", rows, args.sizes, args.threads, args.mix)
    bl.log(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'throughput.svg'}")
    return 0


def rerender(args) -> int:
    """Tables and chart again from a results.json (no benchmark is run)."""
    data = json.loads(Path(args.from_json).read_text())
    for key in ("sizes", "threads", "alternations", "seconds", "warmup", "mix", "library"):
        if key in data["args"]:
            setattr(args, key, data["args"][key])
    args.library = data["args"].get("library", "?")
    return report(data["records"], args, data.get("elapsed", float("nan")), data["machine"], data["args"])


def write_share(mix: str) -> float:
    """Share of writes in ors_bench's calls: puts and deletes over all calls."""
    p, g, d = (int(x) for x in mix.split(":"))
    return (p + d) / (p + g + d)


def aggregate(records: list[dict], sizes: list[int], threads: list[int], mix: str) -> list[dict]:
    w = write_share(mix)
    rows = []
    for size in sizes:
        for t in threads:
            sel = [r for r in records if r["size"] == size and r["threads"] == t]
            alts = sorted({r["alt"] for r in sel})
            per_alt = []
            for a in alts:
                def run(tool: str) -> dict | None:
                    return next((r for r in sel if r["alt"] == a and r["tool"] == tool), None)
                o, s, g = run("ours"), run("SET"), run("GET")
                if not (o and s and g):
                    continue
                per_alt.append(like_for_like(o, run("ours-w"), run("ours-r"), s, g, run("SETt"), run("GETt")))
                per_alt[-1].update({
                    "ours_ops": o["ops_per_sec"], "ours_p50": o["all_p50_us"], "ours_p99": o["all_p99_us"],
                    "ours_p999": o["all_p999_us"], "ours_cpu": o["cpu_us_per_op"],
                    "ours_user": o["user_us_per_op"], "ours_sys": o["sys_us_per_op"],
                    "ours_srv": o["server_cpu_us_per_op"], "ours_foreign": o["foreign_cores"],
                    "ours_csw": o["csw_per_op"],
                    "ours_swk": o.get("server_wakeups_per_op", float("nan")),
                    "put_p50": o["put_p50_us"], "put_p99": o["put_p99_us"],
                    "get_p50": o["get_p50_us"], "get_p99": o["get_p99_us"],
                    "del_p50": o["del_p50_us"], "del_p99": o["del_p99_us"],
                    "set_ops": s["ops_per_sec"], "get_ops": g["ops_per_sec"],
                    "set_p50": s["p50_us"], "set_p99": s["p99_us"], "rget_p50": g["p50_us"], "rget_p99": g["p99_us"],
                    "set_srv": s["server_cpu_us_per_op"],
                    "rb_ops": (s["ops_per_sec"] + g["ops_per_sec"]) / 2,
                    # redis-benchmark's rates combined at our share of writes (time per call weighted).
                    "rb_mix_ops": 1 / (w / s["ops_per_sec"] + (1 - w) / g["ops_per_sec"]),
                    "rb_p50": (s["p50_us"] + g["p50_us"]) / 2, "rb_p99": (s["p99_us"] + g["p99_us"]) / 2,
                    "rb_cpu": (s["cpu_us_per_op"] + g["cpu_us_per_op"]) / 2,
                    "rb_user": (s["user_us_per_op"] + g["user_us_per_op"]) / 2,
                    "rb_sys": (s["sys_us_per_op"] + g["sys_us_per_op"]) / 2,
                    "rb_srv": (s["server_cpu_us_per_op"] + g["server_cpu_us_per_op"]) / 2,
                    "rb_csw": (s["csw_per_op"] + g["csw_per_op"]) / 2,
                    "rb_swk": (s.get("server_wakeups_per_op", float("nan"))
                               + g.get("server_wakeups_per_op", float("nan"))) / 2,
                    "rb_foreign": max(s["foreign_cores"], g["foreign_cores"]),
                    "hit_ratio": g.get("hit_ratio", float("nan")),
                })
            if not per_alt:
                continue
            row = {"size": size, "threads": t, "n": len(per_alt)}
            for key in per_alt[0]:
                row[key] = bl.median([p[key] for p in per_alt])
            row["ours_ops_all"] = [p["ours_ops"] for p in per_alt]
            row["rb_ops_all"] = [p["rb_ops"] for p in per_alt]
            row["ops_ratio_per_pass"] = [p["ours_ops"] / p["rb_ops"] for p in per_alt]
            row["mix_ratio_per_pass"] = [p["ours_ops"] / p["rb_mix_ops"] for p in per_alt]
            for key in ("lf_ratio", "rbt_ratio", "lf_rbt_ratio"):
                row[key + "_per_pass"] = [p[key] for p in per_alt if p[key] is not None]
            row["rbt_ops_all"] = [p["rbt_ops"] for p in per_alt if p["rbt_ops"] is not None]
            rows.append(row)
    return rows


def like_for_like(o: dict, ow: dict | None, orr: dict | None, s: dict, g: dict, st: dict | None,
                  gt: dict | None) -> dict:
    """One pass's like-for-like figures (None where a run is missing):
    ours writes-only beside SET, ours reads beside GET, and redis-benchmark
    in ORS's model (--threads T) beside ours."""
    def mean(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else (a + b) / 2

    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    def field(r: dict | None, key: str) -> float | None:
        return r[key] if r else None

    lf_ours = mean(field(ow, "ops_per_sec"), field(orr, "ops_per_sec"))
    rbt = mean(field(st, "ops_per_sec"), field(gt, "ops_per_sec"))
    put_p99, get_p99 = field(ow, "put_p99_us"), field(orr, "get_p99_us")
    return {
        "oursw_ops": field(ow, "ops_per_sec"), "oursr_ops": field(orr, "ops_per_sec"),
        "oursw_srv": field(ow, "server_cpu_us_per_op"), "sett_srv": field(st, "server_cpu_us_per_op"),
        "oursw_put_p50": field(ow, "put_p50_us"), "oursw_put_p99": put_p99,
        "oursr_get_p50": field(orr, "get_p50_us"), "oursr_get_p99": get_p99,
        "lf_ratio": div(lf_ours, (s["ops_per_sec"] + g["ops_per_sec"]) / 2),
        "lf_p99_ratio": div(mean(put_p99, get_p99), (s["p99_us"] + g["p99_us"]) / 2),
        "lf_cpu_ratio": div(mean(field(ow, "cpu_us_per_op"), field(orr, "cpu_us_per_op")),
                            (s["cpu_us_per_op"] + g["cpu_us_per_op"]) / 2),
        "sett_ops": field(st, "ops_per_sec"), "gett_ops": field(gt, "ops_per_sec"),
        "rbt_ops": rbt, "rbt_cpu": mean(field(st, "cpu_us_per_op"), field(gt, "cpu_us_per_op")),
        "rbt_ratio": div(o["ops_per_sec"], rbt), "lf_rbt_ratio": div(lf_ours, rbt),
    }


def render_markdown(rows: list[dict], args, elapsed: float, machine: str) -> str:
    L = []
    L.append(f"Medians of {args.alternations} alternating passes; each run {args.warmup:g} s warm-up (ours) + "
             f"~{args.seconds:g} s measured. Machine: {machine}. Cluster: 3 masters + 3 replicas "
             f"(c_tests/cluster.sh, AOF on), 127.0.0.1. Ours: mix {args.mix} (put:get:del per session). "
             f"Library: {args.library}. Total run time {elapsed / 60:.1f} min.")
    L.append("")
    L.append("| value | T | ours ops/s | redis-benchmark ops/s (SET/GET mean) | ratio | ours p50 µs | rb p50 µs | ratio "
             "| ours p99 µs | rb p99 µs | ratio | ours CPU µs/op | rb CPU µs/op | ratio |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        L.append(f"| {r['size'] // 1024} KiB | {r['threads']} | {fmt(r['ours_ops'])} | {fmt(r['rb_ops'])} "
                 f"| {ratio(r['ours_ops'], r['rb_ops']):.2f} | {fmt(r['ours_p50'], 1)} | {fmt(r['rb_p50'], 1)} "
                 f"| {ratio(r['ours_p50'], r['rb_p50']):.2f} | {fmt(r['ours_p99'], 1)} | {fmt(r['rb_p99'], 1)} "
                 f"| {ratio(r['ours_p99'], r['rb_p99']):.2f} | {fmt(r['ours_cpu'], 2)} | {fmt(r['rb_cpu'], 2)} "
                 f"| {ratio(r['ours_cpu'], r['rb_cpu']):.2f} |")
    L.append("")
    w = write_share(args.mix)
    L.append(f"The same runs with redis-benchmark's SET and GET rates combined at our share of writes "
             f"({w:.0%} of calls are writes: put and del), i.e. 1 / ({w:.2f} / SET + {1 - w:.2f} / GET):")
    L.append("")
    L.append("| value | T | ours ops/s | redis-benchmark at our write share | ratio | per pass |")
    L.append("|---:|---:|---:|---:|---:|---|")
    for r in rows:
        L.append(f"| {r['size'] // 1024} KiB | {r['threads']} | {fmt(r['ours_ops'])} | {fmt(r['rb_mix_ops'])} "
                 f"| {ratio(r['ours_ops'], r['rb_mix_ops']):.2f} | "
                 + ", ".join(f"{x:.2f}" for x in r["mix_ratio_per_pass"]) + " |")
    L.append("")
    render_like_for_like(L, rows)
    L.append("Per operation (medians; µs):")
    L.append("")
    L.append("| value | T | put p50 / p99 | SET p50 / p99 | get p50 / p99 | GET p50 / p99 | del p50 / p99 "
             "| SET ops/s | GET ops/s | client CPU user+sys ours / rb | context switches/op ours / rb "
             "| server CPU µs/op ours / rb | server wake-ups/op ours / rb | GET hits | other load (cores) ours / rb |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        L.append(f"| {r['size'] // 1024} KiB | {r['threads']} | {fmt(r['put_p50'], 1)} / {fmt(r['put_p99'], 1)} "
                 f"| {fmt(r['set_p50'], 1)} / {fmt(r['set_p99'], 1)} | {fmt(r['get_p50'], 1)} / {fmt(r['get_p99'], 1)} "
                 f"| {fmt(r['rget_p50'], 1)} / {fmt(r['rget_p99'], 1)} | {fmt(r['del_p50'], 1)} / {fmt(r['del_p99'], 1)} "
                 f"| {fmt(r['set_ops'])} | {fmt(r['get_ops'])} "
                 f"| {r['ours_user']:.2f}+{r['ours_sys']:.2f} / {r['rb_user']:.2f}+{r['rb_sys']:.2f} "
                 f"| {r['ours_csw']:.2f} / {r['rb_csw']:.2f} "
                 f"| {fmt(r['ours_srv'], 1)} / {fmt(r['rb_srv'], 1)} "
                 f"| {fmt(r['ours_swk'], 2)} / {fmt(r['rb_swk'], 2)} | {r['hit_ratio'] * 100:.2f}% "
                 f"| {r['ours_foreign']:.2f} / {r['rb_foreign']:.2f} |")
    L.append("")
    L.append("Targets (1 KiB unless said):")
    L.append("")
    for r in rows:
        if r["size"] == 1024:
            q = ratio(r["ours_ops"], r["rb_ops"])
            L.append(f"- ops/s at T={r['threads']}: ours / redis-benchmark = {q:.3f} "
                     f"({'met' if q >= 1 else 'MISSED'}; per pass: "
                     + ", ".join(f"{x:.2f}" for x in r["ops_ratio_per_pass"]) + ")")
    cpu_bad = [r for r in rows if r["ours_cpu"] > r["rb_cpu"]]
    L.append("- client CPU per operation ≤ redis-benchmark's: "
             + ("met in every row" if not cpu_bad else "MISSED at " + ", ".join(
                 f"{r['size'] // 1024} KiB T={r['threads']} ({ratio(r['ours_cpu'], r['rb_cpu']):.3f})"
                 for r in cpu_bad)))
    for r in rows:
        if r["threads"] == 1:
            q = ratio(r["ours_p99"], r["rb_p99"])
            L.append(f"- p99 at T=1, {r['size'] // 1024} KiB: ours / redis-benchmark = {q:.3f} "
                     f"({'met' if q <= 1.2 else 'MISSED'}, target ≤ 1.2)")
    lf = [r for r in rows if r["size"] == 1024 and not math.isnan(r["lf_ratio"])]
    if lf:
        L.append("")
        L.append("The same targets like for like (ours writes-only beside SET, ours reads beside GET; 1 KiB):")
        L.append("")
        for r in lf:
            q = r["lf_ratio"]
            L.append(f"- ops/s at T={r['threads']}: mean of ours / mean of redis-benchmark = {q:.3f} "
                     f"({'met' if q >= 1 else 'MISSED'}; per pass: "
                     + ", ".join(f"{x:.2f}" for x in r["lf_ratio_per_pass"]) + ")"
                     + (f"; against redis-benchmark --threads {r['threads']} (ORS's model): "
                        f"{r['lf_rbt_ratio']:.3f} ({'met' if r['lf_rbt_ratio'] >= 1 else 'MISSED'})"
                        if not math.isnan(r["lf_rbt_ratio"]) else ""))
        for r in lf:
            if r["threads"] == 1:
                q = r["lf_p99_ratio"]
                L.append(f"- p99 at T=1: (put p99 + get p99) / (SET p99 + GET p99) = {q:.3f} "
                         f"({'met' if q <= 1.2 else 'MISSED'}, target ≤ 1.2)")
    L.append("")
    L.append("Notes:")
    L.append("")
    L.append(f"- {RB_NOTE}")
    L.append(f"- {mix_note(args.mix)}")
    L.append("- redis-benchmark's CPU is its own rusage (os.wait4), start-up included; server CPU is the six "
             "redis-server processes' utime+stime from /proc over the run, per operation; server wake-ups are the "
             "voluntary context switches of their main threads (event loops going to sleep for want of work), "
             "per operation. \"Other load\" is CPU "
             "the rest of the machine used during the run (other processes): figures from runs with a high "
             "value are less reliable.")
    return "\n".join(L) + "\n"


def render_like_for_like(L: list[str], rows: list[dict]) -> None:
    """The like-for-like tables, when the runs were made."""
    lf = [r for r in rows if not math.isnan(r["lf_ratio"])]
    if not lf:
        return
    L.append(f"Like for like, from the same passes: ors_bench with writes only (--mix {WRITES_MIX}: a put "
             f"creating the session's key, a del unlinking it) beside redis-benchmark's SET run, and with reads "
             f"(--mix {READS_MIX}: 50 gets per session, 96% of calls) beside its GET run:")
    L.append("")
    L.append("| value | T | ours writes ops/s | rb SET ops/s | ratio | ours reads ops/s | rb GET ops/s | ratio "
             "| mean / mean | put p50 / p99 µs | SET p50 / p99 µs | get p50 / p99 µs | GET p50 / p99 µs "
             "| p99 ratio (means) | client CPU ratio (means) |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in lf:
        L.append(f"| {r['size'] // 1024} KiB | {r['threads']} | {fmt(r['oursw_ops'])} | {fmt(r['set_ops'])} "
                 f"| {ratio(r['oursw_ops'], r['set_ops']):.2f} | {fmt(r['oursr_ops'])} | {fmt(r['get_ops'])} "
                 f"| {ratio(r['oursr_ops'], r['get_ops']):.2f} | **{r['lf_ratio']:.2f}** "
                 f"| {fmt(r['oursw_put_p50'], 1)} / {fmt(r['oursw_put_p99'], 1)} "
                 f"| {fmt(r['set_p50'], 1)} / {fmt(r['set_p99'], 1)} "
                 f"| {fmt(r['oursr_get_p50'], 1)} / {fmt(r['oursr_get_p99'], 1)} "
                 f"| {fmt(r['rget_p50'], 1)} / {fmt(r['rget_p99'], 1)} "
                 f"| {r['lf_p99_ratio']:.2f} | {r['lf_cpu_ratio']:.2f} |")
    L.append("")
    rbt = [r for r in lf if not math.isnan(r["rbt_ratio"])]
    if not rbt:
        return
    L.append("redis-benchmark in ORS's model: --threads T, one client per event-loop thread, so that each "
             "thread waits for its own reply as an ORS worker does (its default runs one thread per master "
             "and multiplexes the clients over them):")
    L.append("")
    L.append("| value | T | rb --threads T SET / GET ops/s | mean | ours ops/s (mix) | ratio "
             "| ours writes / reads ops/s | ratio (means) | rb default mean | rb --threads T / default "
             "| CPU µs/op rb --threads T / default "
             "| server CPU µs per write: SET, default / --threads T; ours writes |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rbt:
        L.append(f"| {r['size'] // 1024} KiB | {r['threads']} | {fmt(r['sett_ops'])} / {fmt(r['gett_ops'])} "
                 f"| {fmt(r['rbt_ops'])} | {fmt(r['ours_ops'])} | **{r['rbt_ratio']:.2f}** "
                 f"| {fmt(r['oursw_ops'])} / {fmt(r['oursr_ops'])} | **{r['lf_rbt_ratio']:.2f}** "
                 f"| {fmt(r['rb_ops'])} | {ratio(r['rbt_ops'], r['rb_ops']):.2f} "
                 f"| {fmt(r['rbt_cpu'], 2)} / {fmt(r['rb_cpu'], 2)} "
                 f"| {fmt(r['set_srv'], 1)} / {fmt(r['sett_srv'], 1)}; {fmt(r['oursw_srv'], 1)} |")
    L.append("")


# ---------------------------------------------------------------------------
# The chart: hand-made SVG


def nice_max(x: float) -> tuple[float, float]:
    """An axis maximum >= x and a tick step."""
    if x <= 0:
        return 1.0, 0.25
    exp = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        step = m * exp / 4
        top = math.ceil(x / step) * step
        if top / step <= 6:
            return top, step
    return x, x / 4


def write_svg(path: Path, rows: list[dict], sizes: list[int], threads: list[int], mix: str) -> None:
    W, H = 420 * len(sizes) + 40, 390
    pw, ph, top, left = 340, 240, 64, 70
    colors = {"ours": "#2b6cb0", "rb": "#dd8a2b", "rbt": "#9a9a9a"}
    bars = [("ours_ops", "ours_ops_all", "ours"), ("rb_ops", "rb_ops_all", "rb")]
    if any(r.get("rbt_ops_all") for r in rows):
        bars.append(("rbt_ops", "rbt_ops_all", "rbt"))
    vmax = max([max(r["ours_ops_all"] + r["rb_ops_all"] + r.get("rbt_ops_all", [])) for r in rows] + [1])
    ymax, step = nice_max(vmax * 1.05)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="Helvetica,Arial,sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
           f'Throughput against threads: ors-redis and redis-benchmark --cluster</text>',
           f'<text x="{W / 2}" y="38" text-anchor="middle" font-size="11" fill="#555">'
           f'bars: median of the passes; whiskers: min to max</text>']
    for i, size in enumerate(sizes):
        x0 = left + i * 420
        out.append(f'<text x="{x0 + pw / 2}" y="{top - 8}" text-anchor="middle" font-weight="bold">'
                   f'{size // 1024} KiB values</text>')
        # axes and grid
        y = 0.0
        while y <= ymax + 1e-9:
            yy = top + ph - ph * y / ymax
            out.append(f'<line x1="{x0}" y1="{yy:.1f}" x2="{x0 + pw}" y2="{yy:.1f}" stroke="#e2e2e2"/>')
            out.append(f'<text x="{x0 - 6}" y="{yy + 4:.1f}" text-anchor="end">{y / 1000:g}k</text>')
            y += step
        out.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{top + ph}" stroke="black"/>')
        out.append(f'<line x1="{x0}" y1="{top + ph}" x2="{x0 + pw}" y2="{top + ph}" stroke="black"/>')
        if i == 0:
            out.append(f'<text transform="translate({x0 - 48},{top + ph / 2}) rotate(-90)" text-anchor="middle">'
                       f'operations per second</text>')
        gw = pw / len(threads)
        bw = gw * 0.6 / len(bars)
        for j, t in enumerate(threads):
            r = next((r for r in rows if r["size"] == size and r["threads"] == t), None)
            gx = x0 + j * gw + gw / 2
            out.append(f'<text x="{gx:.1f}" y="{top + ph + 18}" text-anchor="middle">T = {t}</text>')
            if not r:
                continue
            for k, (key, allkey, who) in enumerate(bars):
                bx = gx - len(bars) * (bw + 4) / 2 + 2 + k * (bw + 4)
                v = r.get(key, float("nan"))
                if not r.get(allkey) or math.isnan(v):
                    continue
                h = ph * v / ymax
                col = colors[who]
                out.append(f'<rect x="{bx:.1f}" y="{top + ph - h:.1f}" width="{bw:.1f}" height="{h:.1f}" fill="{col}"/>')
                lo, hi = min(r[allkey]), max(r[allkey])
                cx = bx + bw / 2
                y_lo, y_hi = top + ph - ph * lo / ymax, top + ph - ph * hi / ymax
                out.append(f'<line x1="{cx:.1f}" y1="{y_lo:.1f}" x2="{cx:.1f}" y2="{y_hi:.1f}" stroke="black"/>')
                for yy in (y_lo, y_hi):
                    out.append(f'<line x1="{cx - 4:.1f}" y1="{yy:.1f}" x2="{cx + 4:.1f}" y2="{yy:.1f}" stroke="black"/>')
                out.append(f'<text x="{cx:.1f}" y="{y_hi - 5:.1f}" text-anchor="middle" font-size="9">'
                           f'{v / 1000:.1f}k</text>')
    ly = H - 44
    out.append(f'<rect x="{left}" y="{ly - 10}" width="12" height="12" fill="{colors["ours"]}"/>')
    out.append(f'<text x="{left + 18}" y="{ly}">ors-redis (ors_bench --mix {mix}: put:get:del per session; T threads)</text>')
    out.append(f'<rect x="{left}" y="{ly + 6}" width="12" height="12" fill="{colors["rb"]}"/>')
    out.append(f'<text x="{left + 18}" y="{ly + 16}">redis-benchmark --cluster -P 1 -c T (mean of SET and GET)</text>')
    if len(bars) == 3:
        out.append(f'<rect x="{left}" y="{ly + 22}" width="12" height="12" fill="{colors["rbt"]}"/>')
        out.append(f'<text x="{left + 18}" y="{ly + 32}">the same with --threads T: one client per thread, '
                   f'as ORS\'s workers (T above the number of masters)</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


# ---------------------------------------------------------------------------
# --tls mode: the cost of TLS


def tls_mode(args, bench: Path) -> int:
    plain = bl.Cluster(args.port, Path(args.cluster_dir), reuse=args.reuse)
    tls = bl.Cluster(args.tls_port, Path(args.tls_dir), tls_dir=Path(args.tls_dir), tls_bad_port=args.tls_bad_port,
                     reuse=args.reuse)
    records: list[dict] = []
    size = 1024
    threads = args.tls_threads
    try:
        plain.start()
        tls.start()
        sides = {"plain": (plain, plain.server_pids(), None), "TLS": (tls, tls.server_pids(), tls.certs)}
        rbs = {name: RbRunner(c, pids, args.seconds, tls=(name == "TLS")) for name, (c, pids, _) in sides.items()}
        started = time.monotonic()
        if args.tls_rb:
            bl.log("calibrating redis-benchmark -n (not recorded)")
            for name, rb in rbs.items():
                rb.prepopulate(size)
                for t in threads:
                    for cmd in ("SET", "GET"):
                        rb.run(cmd, t, size, requests=max(5000, 3000 * t))
        for alt in range(args.alternations):
            for t in threads:
                names = ["plain", "TLS"] if alt % 2 == 0 else ["TLS", "plain"]
                for name in names:
                    c, pids, certs = sides[name]
                    config = f"redis-nodes={c.nodes()} cluster-name=bench"
                    r = bl.run_ours(bench, config, t, size, args.seconds, args.warmup, pids,
                                    extra=["--mix", args.mix], tls_dir=certs)
                    if r["errors"]:
                        raise bl.BenchError(f"ors_bench reported {r['errors']} errors")
                    r.update(alt=alt, threads=t, side=name, tool="ours")
                    records.append(r)
                    bl.log(f"pass {alt + 1}/{args.alternations} T={t} ours {name:5}: {r['ops_per_sec']:,.0f} ops/s, "
                           f"p50 {r['all_p50_us']:.1f} us, CPU {r['cpu_us_per_op']:.2f} us/op")
                    if args.tls_rb:
                        for cmd in ("SET", "GET"):
                            rr = rbs[name].run(cmd, t, size)
                            rr.update(alt=alt, threads=t, side=name, tool=cmd)
                            records.append(rr)
                            bl.log(f"pass {alt + 1}/{args.alternations} T={t} rb {cmd} {name:5}: "
                                   f"{rr['ops_per_sec']:,.0f} ops/s, CPU {rr['cpu_us_per_op']:.2f} us/op")
        elapsed = time.monotonic() - started
    finally:
        if not args.keep:
            tls.stop()
            plain.stop()

    def med(tool: str, side: str, t: int, key: str) -> float:
        if tool == "rb":
            vals = []
            for a in range(args.alternations):
                pair = [r[key] for r in records if r["tool"] in ("SET", "GET") and r["side"] == side
                        and r["threads"] == t and r["alt"] == a]
                if len(pair) == 2:
                    vals.append(sum(pair) / 2)
            return bl.median(vals)
        return bl.median([r[key] for r in records if r["tool"] == tool and r["side"] == side and r["threads"] == t])

    L = [f"Cost of TLS, 1 KiB values, medians of {args.alternations} alternating passes "
         f"({args.warmup:g} s warm-up + {args.seconds:g} s each). Machine: {bl.Machine.describe()}. "
         f"Plain cluster on {args.port}-{args.port + 5}; TLS cluster on {args.tls_port}-{args.tls_port + 5} "
         f"(c_tests/tls-servers.sh: TLS only, tls-replication, tls-cluster, tls-auth-clients yes; the client "
         f"presents a certificate). Library: {args.library}. Total run time {elapsed / 60:.1f} min.", "",
         "| client | T | ops/s plain | ops/s TLS | TLS/plain | p50 µs plain | p50 µs TLS | TLS/plain "
         "| p99 µs plain | p99 µs TLS | TLS/plain | CPU µs/op plain | CPU µs/op TLS | TLS/plain "
         "| server CPU µs/op plain / TLS |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = []
    tools = [("ors-redis", "ours", "all_p50_us", "all_p99_us")]
    if args.tls_rb:
        tools.append(("redis-benchmark (SET/GET mean)", "rb", "p50_us", "p99_us"))
    for label, tool, p50k, p99k in tools:
        for t in threads:
            row = {"client": label, "threads": t}
            for side in ("plain", "TLS"):
                row[f"ops_{side}"] = med(tool, side, t, "ops_per_sec")
                row[f"p50_{side}"] = med(tool, side, t, p50k)
                row[f"p99_{side}"] = med(tool, side, t, p99k)
                row[f"cpu_{side}"] = med(tool, side, t, "cpu_us_per_op")
                row[f"srv_{side}"] = med(tool, side, t, "server_cpu_us_per_op")
            rows.append(row)
            L.append(f"| {label} | {t} | {fmt(row['ops_plain'])} | {fmt(row['ops_TLS'])} "
                     f"| {ratio(row['ops_TLS'], row['ops_plain']):.2f} | {fmt(row['p50_plain'], 1)} "
                     f"| {fmt(row['p50_TLS'], 1)} | {ratio(row['p50_TLS'], row['p50_plain']):.2f} "
                     f"| {fmt(row['p99_plain'], 1)} | {fmt(row['p99_TLS'], 1)} "
                     f"| {ratio(row['p99_TLS'], row['p99_plain']):.2f} | {fmt(row['cpu_plain'], 2)} "
                     f"| {fmt(row['cpu_TLS'], 2)} | {ratio(row['cpu_TLS'], row['cpu_plain']):.2f} "
                     f"| {fmt(row['srv_plain'], 1)} / {fmt(row['srv_TLS'], 1)} |")
    L += ["", "ors-redis uses rustls (ring); redis-benchmark uses OpenSSL. Both clusters run on the same 2 cores, "
          "so the servers' own TLS work (client and replication links) lowers throughput too: compare the client "
          "CPU columns for the library's own cost."]
    md = "\n".join(L) + "\n"
    print(md)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tls-results.md").write_text(md)
    (out / "tls-results.json").write_text(json.dumps({"machine": bl.Machine.describe(), "args": vars(args),
                                                      "records": records, "rows": rows}, indent=1))
    bl.log(f"wrote {out / 'tls-results.md'}, {out / 'tls-results.json'}")
    return 0


# ---------------------------------------------------------------------------


def int_list(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tls", action="store_true", help="measure plain vs TLS for ors-redis instead")
    ap.add_argument("--lib-dir", help="folder with libors_redis.so (default target/release, built if missing)")
    ap.add_argument("--port", type=int, default=7110, help="first port of the plain cluster (default 7110)")
    ap.add_argument("--cluster-dir", default="/tmp/ors-bench-cluster", help="data folder of the plain cluster")
    ap.add_argument("--tls-port", type=int, default=7120, help="first port of the TLS cluster (default 7120)")
    ap.add_argument("--tls-bad-port", type=int, default=7130, help="tls-servers.sh's bad-certificate ports (7130)")
    ap.add_argument("--tls-dir", default="/tmp/bench-tls", help="tls-servers.sh's ORS_TLS_DIR (certs in DIR/certs)")
    ap.add_argument("--tls-threads", type=int_list, default=[1, 4], help="--tls: thread counts (1,4)")
    ap.add_argument("--no-tls-rb", dest="tls_rb", action="store_false",
                    help="--tls: skip the redis-benchmark reference runs")
    ap.add_argument("--reuse", action="store_true", help="use clusters already running; never start or stop them")
    ap.add_argument("--keep", action="store_true", help="leave the clusters running afterwards")
    ap.add_argument("--threads", type=int_list, default=[1, 4, 16], help="thread counts (1,4,16)")
    ap.add_argument("--sizes", type=int_list, default=[1024, 4096], help="value sizes in bytes (1024,4096)")
    ap.add_argument("--alternations", type=int, default=3, help="passes over every configuration (3)")
    ap.add_argument("--seconds", type=float, default=4.0, help="measured seconds per run (4)")
    ap.add_argument("--warmup", type=float, default=1.0, help="ors_bench warm-up seconds (1)")
    # 1:2:1 (put, get, get, del): one write in two calls, the write share of
    # redis-benchmark's SET/GET mean that the targets compare with. ORS's own
    # shape, 1:1:1, is two writes in three calls: run it with --mix 1:1:1.
    ap.add_argument("--mix", default="1:2:1", help="ors_bench --mix (1:2:1: one write in two calls)")
    ap.add_argument("--no-like-for-like", dest="like_for_like", action="store_false",
                    help="skip the like-for-like runs (ours writes-only and reads beside SET and GET, "
                         "redis-benchmark --threads T)")
    ap.add_argument("--out-dir", default=str(HERE), help="where to write results (default bench/)")
    ap.add_argument("--label", help="what the library is, for the reports (e.g. 'commit 95e9f02')")
    ap.add_argument("--from-json", help="only redraw the tables and chart from a results.json")
    args = ap.parse_args()
    bl.install_signal_handlers()
    if args.from_json:
        return rerender(args)
    try:
        lib = bl.find_library(args.lib_dir)
        bench = bl.build_bench(lib)
        args.library = bl.describe_library(lib, args.label)
        bl.log(f"library: {args.library}; bench {bench}")
        return tls_mode(args, bench) if args.tls else compare(args, bench)
    except bl.BenchError as e:
        print(f"compare.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("compare.py: interrupted (servers stopped)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
