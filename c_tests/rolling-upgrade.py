#!/usr/bin/env python3
"""rolling-upgrade.py: an ORS pair in the middle of a rolling upgrade, one
side on an older release, the other on this one (docs/compression.md), on a
running cluster:

    c_tests/rolling-upgrade.py OLD_LIB_DIR NEW_LIB_DIR --nodes 127.0.0.1:7000

OLD_LIB_DIR holds the libors_redis.so of a release before compressed values
(c_tests/build-old-release.sh builds a018743's and prints its folder; the
ctest rolling_upgrade runs this with it), NEW_LIB_DIR this one's. Each side
runs in a process of its own (the two libraries export the same names) and
talks through the cluster only:

1. the new side, compression=off, writes sessions (text, binary, empty,
   large); the old side reads every one back byte for byte (what the
   rollout's first step relies on), and the new side reads the old side's;
2. the new side, compression=zstd, writes one session: the old side gets the
   envelope's bytes, not the session: why readers go first (it says so);
3. the new side with compression back to off reads that session as given.

Prints "N passed, M failed"; exits 1 on any failure. Python 3.11 standard
library only.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys

MAGIC = b"\x00\x89ORSz\r\n"


def values() -> dict[str, bytes]:
    out = {"text": b'{"vars":{"language":"en-US","segment":"Gold"}}' * 40,
           "binary": bytes(range(256)) * 8, "empty": b"", "short": b"x",
           "large": b"<event name='interaction.attached'/>" * 30000}
    out["magic-like"] = MAGIC[:6] + b" plain"
    return out


def side(lib_dir: str, config: str, action: str, ids: list[str], payload: dict[str, str]) -> dict:
    """Runs in a child process: init, then put or get each id; shutdown."""
    lib = ctypes.CDLL(os.path.join(lib_dir, "libors_redis.so"))
    lib.ors_session_put.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32]
    lib.ors_session_get.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
    lib.ors_free.argtypes = [ctypes.c_void_p]
    lib.ors_last_error.restype = ctypes.c_char_p
    if lib.ors_redis_init(config.encode()) != 0:
        return {"error": lib.ors_last_error().decode(errors="replace")}
    out = {}
    for sid in ids:
        if action == "put":
            v = bytes.fromhex(payload[sid])
            st = lib.ors_session_put(sid.encode(), v, len(v), 300)
            out[sid] = "ok" if st == 0 else f"status {st}"
        else:
            data, n = ctypes.c_void_p(), ctypes.c_size_t()
            st = lib.ors_session_get(sid.encode(), ctypes.byref(data), ctypes.byref(n))
            out[sid] = ctypes.string_at(data, n.value).hex() if st == 0 else f"status {st}"
            lib.ors_free(data)
    lib.ors_redis_shutdown()
    return out


def run_side(lib_dir: str, config: str, action: str, payload: dict[str, bytes]) -> dict:
    job = {"lib_dir": lib_dir, "config": config, "action": action, "ids": list(payload),
           "payload": {k: v.hex() for k, v in payload.items()}}
    r = subprocess.run([sys.executable, __file__, "--side"], input=json.dumps(job), capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"side {lib_dir} {action} failed: {r.stderr}")
    out = json.loads(r.stdout)
    if "error" in out:
        raise SystemExit(f"side {lib_dir}: {out['error']}")
    return out


def main() -> int:
    if sys.argv[1:2] == ["--side"]:
        job = json.loads(sys.stdin.read())
        print(json.dumps(side(job["lib_dir"], job["config"], job["action"], job["ids"], job["payload"])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old_lib_dir")
    ap.add_argument("new_lib_dir")
    ap.add_argument("--nodes", default="127.0.0.1:7000")
    args = ap.parse_args()
    base = f"redis-nodes={args.nodes} cluster-name=t_rolling_{os.getpid()}"
    passed = failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        print(("ok    " if ok else "FAIL  ") + what)
        passed, failed = passed + ok, failed + (not ok)

    new_written = {f"new-{k}": v for k, v in values().items()}
    put = run_side(args.new_lib_dir, f"{base} compression=off", "put", new_written)
    check(all(s == "ok" for s in put.values()), "the new release writes with compression=off")
    got = run_side(args.old_lib_dir, base, "get", new_written)
    for sid, v in new_written.items():
        check(got[sid] == v.hex(), f"the old release reads {sid} ({len(v)} B) as written")
    old_written = {f"old-{k}": v for k, v in values().items()}
    run_side(args.old_lib_dir, base, "put", old_written)
    got = run_side(args.new_lib_dir, f"{base} compression=zstd", "get", old_written)
    for sid, v in old_written.items():
        check(got[sid] == v.hex(), f"the new release (compression=zstd) reads the old one's {sid}")

    text = {"zstd-text": values()["text"]}
    run_side(args.new_lib_dir, f"{base} compression=zstd", "put", text)
    got = run_side(args.old_lib_dir, base, "get", text)
    stored = bytes.fromhex(got["zstd-text"]) if not got["zstd-text"].startswith("status") else b""
    check(stored.startswith(MAGIC) and stored != text["zstd-text"],
          f"a compressed session reaches the old release as the envelope ({len(stored)} B, not "
          f"{len(text['zstd-text'])}): readers first, then writing (docs/compression.md)")
    got = run_side(args.new_lib_dir, base, "get", text)
    check(got["zstd-text"] == text["zstd-text"].hex(), "the new release with compression=off reads it as given")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
