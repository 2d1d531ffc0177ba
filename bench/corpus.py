#!/usr/bin/env python3
"""A corpus that stands in for ORS sessions, generated reproducibly from a seed.

    bench/corpus.py [--seed 29] [--count 2000] [--out DIR]   # one file per session
    bench/corpus.py --stats                                   # sizes only

What an ORS session holds, and so the shape chosen here:
- the SCXML session's data model: variables of the strategy (strings such as
  language, segment, service type, queue and skill names; numbers; booleans;
  nested objects) as JSON, the way ORS serialises its ECMAScript data model;
- the state configuration (active states of the SCXML document);
- the event queue: pending events (interaction.* and platform events) with
  their parameters;
- call attachments (attached data, Genesys KVList): a flat key-value list,
  some values XML or JSON fragments;
- ids and timestamps that vary per session: session, interaction and
  connection ids (hex, UUID-like), ANI/DNIS digits, ISO timestamps with
  milliseconds, counters. These are what keep real sessions from being
  copies of each other, and they compress worst; each session draws its own.

Sizes: log-normal with a median of about 2 KiB (glide's published figures are
for ~950 B and ~1.9 KB records; Genesys sizes ORS memory with a few KiB per
session), clamped to 500 B .. 64 KiB: a session grows by events and
attachments until it reaches its drawn size, so large sessions are long event
queues and big attachments, as in a long-lived interaction. Names and
vocabulary repeat across sessions (one strategy, one site), values do not.

Python 3.11 standard library only; the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from pathlib import Path

MIN_BYTES = 500
MAX_BYTES = 64 * 1024
MEDIAN_BYTES = 2048
SIGMA = 0.9

STATES = ["init", "identify", "menu", "collect", "route", "queue", "agent", "wrap", "transfer", "survey"]
EVENTS = ["interaction.added", "interaction.attached", "interaction.partystatechanged",
          "interaction.deleted", "dialog.menu.done", "dialog.collect.done", "queue.submit.done",
          "error.queue.submit", "timer.expired", "http.response"]
LANGS = ["en-US", "en-GB", "fr-FR", "de-DE", "es-ES", "nl-NL"]
SEGMENTS = ["Gold", "Silver", "Bronze", "Platinum", "Standard"]
SERVICES = ["Billing", "Sales", "Support", "Retention", "Technical", "Claims"]
VQS = ["VQ_Billing_EN", "VQ_Sales_EN", "VQ_Support_FR", "VQ_Tech_DE", "VQ_Retention_ES"]
SKILLS = ["English", "French", "German", "Spanish", "Billing", "Technical", "VIP"]
KV_KEYS = ["CustomerSegment", "ServiceType", "ServiceSubType", "AccountNumber", "CustomerName",
           "IW_CaseUid", "IW_BundleUid", "RTargetTypeSelected", "RTargetAgentSelected",
           "RTargetPlaceSelected", "RTargetRuleSelected", "RVQID", "GSW_CALLING_LIST",
           "CallbackNumber", "IntentScore", "LastAgent", "OrderId", "Priority", "Language", "TransferReason"]


class Session:
    def __init__(self, rng: random.Random, index: int):
        self.rng = rng
        self.index = index
        self.t_ms = 1_796_000_000_000 + rng.randrange(0, 86_400_000 * 30)

    def hexid(self, n: int = 16) -> str:
        return "%0*X" % (n, self.rng.getrandbits(4 * n))

    def uuid(self) -> str:
        h = "%032x" % self.rng.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def ts(self) -> str:
        self.t_ms += self.rng.randrange(5, 45_000)
        s, ms = divmod(self.t_ms, 1000)
        d = s // 86400
        h, m, sec = (s // 3600) % 24, (s // 60) % 60, s % 60
        return f"2026-{1 + d % 12:02d}-{1 + d % 28:02d}T{h:02d}:{m:02d}:{sec:02d}.{ms:03d}Z"

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def kv_value(self, key: str):
        r = self.rng
        if key in ("AccountNumber", "OrderId", "CallbackNumber"):
            return self.digits(r.choice([8, 10, 12]))
        if key in ("IW_CaseUid", "IW_BundleUid"):
            return self.uuid()
        if key == "IntentScore":
            return round(r.random(), 3)
        if key == "CustomerName":
            return r.choice(["A.", "J.", "M.", "S."]) + " " + r.choice(["Martin", "Smith", "Meyer", "Garcia", "Rossi"])
        if key == "GSW_CALLING_LIST":
            return f"<list name=\"CL_{r.choice(SERVICES)}\" id=\"{r.randrange(1, 999)}\" record=\"{self.digits(7)}\"/>"
        if key.startswith("RTarget"):
            return f"{r.choice(VQS)}@{r.choice(['StatServer', 'SS_B'])}.GA"
        return r.choice(SEGMENTS + SERVICES + LANGS)

    def event(self) -> dict:
        r = self.rng
        name = r.choice(EVENTS)
        data = {"interactionid": self.hexid(16), "ts": self.ts(), "seq": r.randrange(1, 10_000)}
        if name.startswith("interaction."):
            data["party"] = {"type": r.choice(["Agent", "Customer", "RoutingPoint"]),
                             "dn": self.digits(4), "connid": self.hexid(16).lower()}
        if name == "http.response":
            data["body"] = json.dumps({"status": r.choice([200, 200, 200, 404, 500]),
                                       "account": self.digits(10),
                                       "balance": round(r.uniform(-500, 5000), 2)})
        if name == "queue.submit.done":
            data["target"] = {"vq": r.choice(VQS), "agent": f"agent{r.randrange(1, 3000):04d}",
                              "skill": r.choice(SKILLS), "wait_ms": r.randrange(0, 600_000)}
        return {"name": name, "sendid": self.uuid(), "data": data}

    def build(self, target: int) -> bytes:
        r = self.rng
        model = {
            "_sessionid": self.hexid(16),
            "_name": "Strategy_" + r.choice(SERVICES),
            "_ioprocessors": {"scxml": {"location": f"orchestration:{self.hexid(12)}"}},
            "ixn": {"id": self.hexid(16), "connid": self.hexid(16).lower(), "ani": "+1" + self.digits(10),
                    "dnis": self.digits(4), "media": r.choice(["voice", "chat", "email"]), "created": self.ts()},
            "vars": {
                "language": r.choice(LANGS), "segment": r.choice(SEGMENTS), "service": r.choice(SERVICES),
                "retries": r.randrange(0, 4), "authenticated": r.random() < 0.6,
                "menuPath": "/".join(r.choice(["1", "2", "3", "9"]) for _ in range(r.randrange(1, 5))),
                "estimatedWait": r.randrange(0, 900), "vq": r.choice(VQS),
            },
        }
        doc = {"version": 3, "session": self.uuid(), "states": r.sample(STATES, r.randrange(1, 4)),
               "datamodel": model, "events": [], "attached": {}, "saved": self.ts()}
        keys = list(KV_KEYS)
        r.shuffle(keys)
        # A small session has few attachments (a fresh interaction).
        for k in keys[: r.randrange(0, 3) if target < 1000 else r.randrange(4, 12)]:
            doc["attached"][k] = self.kv_value(k)
        out = json.dumps(doc, separators=(",", ":"))
        # Grow by events (most) and attachments until the drawn size.
        while len(out) < target:
            if r.random() < 0.8:
                doc["events"].append(self.event())
            else:
                k = r.choice(KV_KEYS) + f"_{len(doc['attached'])}"
                doc["attached"][k] = self.kv_value(r.choice(KV_KEYS))
            out = json.dumps(doc, separators=(",", ":"))
        return out.encode()[:MAX_BYTES] if len(out) > MAX_BYTES else out.encode()


def draw_size(rng: random.Random) -> int:
    size = int(MEDIAN_BYTES * math.exp(rng.gauss(0.0, SIGMA)))
    return max(MIN_BYTES, min(MAX_BYTES, size))


def generate(seed: int, count: int, size: int | None = None) -> list[bytes]:
    """`count` sessions from `seed`: the same seed, the same bytes. With
    `size`, every session grows to about that size instead of a drawn one."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        target = draw_size(rng) if size is None else size
        out.append(Session(rng, i).build(target))
    return out


def median_session(sessions: list[bytes]) -> bytes:
    return sorted(sessions, key=len)[len(sessions) // 2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=29)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--out", help="write one file per session here (session-00000.json ...)")
    ap.add_argument("--stats", action="store_true", help="print the size distribution")
    args = ap.parse_args()
    sessions = generate(args.seed, args.count)
    if args.out:
        d = Path(args.out)
        d.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(sessions):
            (d / f"session-{i:05d}.json").write_bytes(s)
    sizes = sorted(len(s) for s in sessions)
    q = statistics.quantiles(sizes, n=20)
    print(f"{len(sizes)} sessions, seed {args.seed}: min {sizes[0]} B, p5 {q[0]:.0f}, median "
          f"{statistics.median(sizes):.0f}, p95 {q[-1]:.0f}, max {sizes[-1]} B, "
          f"total {sum(sizes)} B", file=sys.stderr if not args.stats else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
