#!/usr/bin/env python3
"""check-links.py: every relative link in the repository's Markdown files
points at something that exists.

For each *.md file (the files git tracks or would track, or every *.md below
the root outside target/ when there is no git), each inline link or image
`[text](target)` whose target is not a URL is resolved against the file's
folder: the file or folder must exist, and a `#anchor` on a Markdown file
(or on its own page) must be one of that file's headings, spelled as GitHub
spells heading anchors. Links inside fenced code blocks and code spans are
not links. Exits 1 and lists each dead link as file:line.

    c_tests/check-links.py [--root DIR]
    c_tests/check-links.py --self-test     # shows that a dead file and a dead anchor fail

Python 3 standard library only.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files(root):
    try:
        out = subprocess.run(
            ["git", "-c", f"safe.directory={root}", "ls-files", "--cached", "--others",
             "--exclude-standard", "-z", "--", "*.md"],
            cwd=root, check=True, capture_output=True).stdout
        return sorted({root / p for p in out.decode().split("\0") if p and (root / p).is_file()})
    except (OSError, subprocess.CalledProcessError):
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in (".git", "target")]
            found += [Path(dirpath) / f for f in filenames if f.endswith(".md")]
        return sorted(found)


def prose_lines(text):
    """(line number, line with code spans removed), fenced code left out."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped
    (code span backticks included), spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        seen = {}
        found = set()
        for _, line in prose_lines(path.read_text(encoding="utf-8")):
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2).replace("`", ""))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        cache[path] = found
    return cache[path]


def check(root):
    dead = []
    files = markdown_files(root)
    links = 0
    for md in files:
        for number, line in prose_lines(md.read_text(encoding="utf-8")):
            line = CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)
            for m in LINK.finditer(line):
                target = m.group(1)
                if URL.match(target):
                    continue
                links += 1
                path_part, _, anchor = target.partition("#")
                dest = (md.parent / path_part).resolve() if path_part else md
                where = f"{md.relative_to(root)}:{number}"
                if not dest.exists():
                    dead.append(f"{where}: {target}: no such file")
                elif anchor and dest.is_file() and dest.suffix == ".md" and anchor not in anchors(dest):
                    dead.append(f"{where}: {target}: no heading '#{anchor}' in {dest.relative_to(root)}")
    return files, links, dead


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "docs").mkdir()
        (root / "README.md").write_text(
            "# Top\n\n## The C++ wrapper: `x.hpp`\n\n"
            "[ok](docs/a.md) [ok](docs/a.md#second-part) [ok](#the-c-wrapper-xhpp)\n"
            "[dead file](docs/missing.md)\n"
            "`[not a link](nowhere.md)`\n"
            "```\n[not a link](nowhere.md)\n```\n")
        (root / "docs" / "a.md").write_text(
            "# A\n\n## Second part\n\n[dead anchor](../README.md#no-such-heading) [ok](../README.md#top)\n")
        _, links, dead = check(root)
        expected = ["README.md:6: docs/missing.md: no such file",
                    "docs/a.md:5: ../README.md#no-such-heading: no heading '#no-such-heading' in README.md"]
        if links != 6 or dead != expected:
            print(f"FAIL  self-test: {links} links checked, dead links found: {dead}")
            return 1
        print("ok    self-test: a dead file and a dead anchor are reported, code is skipped")
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    root = Path(args.root).resolve()
    files, links, dead = check(root)
    for d in dead:
        print(f"FAIL  {d}")
    print(f"check-links: {links} relative link(s) in {len(files)} Markdown file(s), {len(dead)} dead")
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main())
