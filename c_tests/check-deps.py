#!/usr/bin/env python3
"""check-deps.py: every external command the test scripts call is in
c_tests/deps.txt, the one list of what the tests need from the system.

The scripts are c_tests/**/*.sh, cmake/*.sh, fuzz/run.sh, bench/*.sh and
.ci/run, read with a small shell parser (bash is not run), plus the literal
program names in the Python helpers' subprocess calls (c_tests/*.py,
bench/*.py). A command found in a script must be listed in deps.txt for that
script's part (its `script` line), for `core` (every run but the demo's
installs it), or as `base` (on every Debian 12 system), `rust` (comes with
the Rust toolchain), `self` (the script installs it) or `-` (used only where
it is there). Exits 1 and names each command that is not,
as file:line; also checks that a `base` line names a package of Debian's
minimal system, as listed in deps.txt, so that nothing is called "base" to
get past the check.

What the parser sees: the first word of every simple command, in pipelines,
lists, subshells, `$(...)`, backquotes, `<(...)`, `bash -c '...'`,
`sh -c '...'` and `trap '...'` strings; the command behind the wrappers
timeout, env, sudo, exec, nice, nohup, xargs, flock, unshare, valgrind,
strace and `command`, and behind the scripts' own helpers quiet, check and
run_logged; `command -v NAME` probes; `python3 -m MODULE` (as python3:MODULE)
and `cargo SUBCOMMAND` for subcommands cargo does not have itself (as
cargo-SUBCOMMAND); a variable at command position when the script gives it a
literal value (`CARGO=${CARGO:-cargo}`, `SUDO=(sudo -n)`, `for tool in a b`,
`read -a PIP <<<"${PIP:-python3 -m pip}"`, `$MINGW-gcc`). What it cannot see:
a command named by a variable it cannot resolve ("$bin", "$@"), a command run
by a program (make, cmake, cargo build scripts, a program's own exec), and
anything inside awk, sed or python -c programs. Heredoc bodies, comments and
quoted strings are not commands.

    c_tests/check-deps.py [--root DIR] [--list]
    c_tests/check-deps.py --self-test      # shows that an unlisted command fails

Python 3 standard library only.
"""

import argparse
import fnmatch
import re
import sys
import tempfile
from pathlib import Path

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
COMMAND_NAME = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_.+-]*|\[|:|\.)$")
ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[[^]]*\])?\+?=")
KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time", "in"}
# cargo's own subcommands (and the rustup components clippy and fmt).
CARGO_OWN = {"add", "bench", "build", "check", "clean", "clippy", "doc", "fetch", "fix", "fmt", "generate-lockfile",
             "help", "init", "install", "locate-project", "login", "metadata", "new", "package", "pkgid", "publish",
             "remove", "run", "rustc", "rustdoc", "search", "test", "tree", "uninstall", "update", "vendor",
             "verify-project", "version", "yank"}
# Options that take an argument, for the wrappers whose command follows them.
WRAPPER_ARGS = {
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "env": {"-u", "--unset", "-C", "--chdir", "-S"},
    "sudo": {"-u", "-g", "-C", "-h", "-p", "-D", "-r", "-t", "-U"},
    "exec": {"-a"},
    "nice": {"-n", "--adjustment"},
    "nohup": set(),
    "xargs": {"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"},
    "flock": {"-w", "--timeout", "-E", "--conflict-exit-code"},
    "unshare": {"-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd"},
    "valgrind": set(),
    "strace": {"-a", "-b", "-e", "-E", "-I", "-o", "-O", "-p", "-P", "-s", "-S", "-u", "-X"},
}
# How many arguments come before the command: timeout DURATION, flock FILE.
WRAPPER_POSITIONAL = {"timeout": 1, "flock": 1}
# The scripts' own helpers that run their arguments as a command, and how
# many arguments come first (check DESCRIPTION COMMAND..., run_logged LOG COMMAND...).
HELPERS = {"quiet": 0, "check": 1, "run_logged": 1}


class Word:
    """One shell word: its parts, ('lit', text), ('var', name, default or
    None), or ('other',) for what cannot be known (command substitution,
    arithmetic, $@). `array` holds the element words of NAME=(...)."""

    def __init__(self, line):
        self.parts = []
        self.line = line
        self.quoted = False
        self.array = None

    def add(self, kind, *rest):
        if kind == "lit" and self.parts and self.parts[-1][0] == "lit":
            self.parts[-1] = ("lit", self.parts[-1][1] + rest[0])
        else:
            self.parts.append((kind, *rest))

    @staticmethod
    def of(text, line):
        w = Word(line)
        w.add("lit", text)
        return w

    def is_assignment(self):
        """NAME=... or NAME+=... (NAME[i]=... too)."""
        return bool(self.parts and self.parts[0][0] == "lit" and ASSIGN.match(self.parts[0][1]))

    def literal(self):
        """The text when the word has no expansion, else None."""
        if all(p[0] == "lit" for p in self.parts):
            return "".join(p[1] for p in self.parts)
        return None


class Lexer:
    """Splits shell text into words, operators and newlines. Command
    substitutions, backquotes and process substitutions are handed to
    `nested` as (text, line) to be parsed on their own."""

    OPS = ["&>>", ";;&", "&&", "||", ";;", ";&", "|&", "<<<", "<<-", "<<", ">>", "<&", ">&", "<>", ">|", "&>",
           "|", "&", ";", "(", ")", "<", ">"]
    REDIRECTS = {"<", ">", ">>", "<&", ">&", "<>", ">|", "&>", "&>>", "<<<"}

    def __init__(self, text, line, nested):
        self.s = text
        self.i = 0
        self.line = line
        self.nested = nested
        self.tokens = []
        self.heredocs = []

    def peek(self, k=0):
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def matching(self, start, open_, close):
        """Index just past the `close` that balances the `open_` before
        `start`, skipping quoted text."""
        depth = 1
        j = start
        s = self.s
        while j < len(s):
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "'":
                k = s.find("'", j + 1)
                j = len(s) if k < 0 else k + 1
                continue
            if c == '"':
                k = j + 1
                while k < len(s) and s[k] != '"':
                    k += 2 if s[k] == "\\" else 1
                j = k + 1
                continue
            if s.startswith(open_, j):
                depth += 1
                j += len(open_)
                continue
            if s.startswith(close, j):
                depth -= 1
                j += len(close)
                if depth == 0:
                    return j
                continue
            j += 1
        return len(s)

    def take(self, end):
        """Consumes up to `end`, counting newlines; returns the text."""
        text = self.s[self.i:end]
        self.line += text.count("\n")
        self.i = end
        return text

    def dollar(self, word):
        """At a `$`: adds the expansion to `word`."""
        line = self.line
        if self.s.startswith("$((", self.i):
            self.take(self.matching(self.i + 3, "((", "))"))
            word.add("other")
        elif self.s.startswith("$(", self.i):
            end = self.matching(self.i + 2, "(", ")")
            text = self.take(end)
            self.nested.append((text[2:-1], line))
            word.add("other")
        elif self.s.startswith("${", self.i):
            end = self.matching(self.i + 2, "{", "}")
            inner = self.take(end)[2:-1]
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)(\[[@*]\])?(?:(:?[-=])(.*))?$", inner, re.S)
            if m and (m.group(3) is None or m.group(3) in (":-", "-", ":=", "=")):
                word.add("var", m.group(1), m.group(4))
            else:
                word.add("other")
        else:
            m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", self.s[self.i + 1:])
            if m:
                self.take(self.i + 1 + m.end())
                word.add("var", m.group(0), None)
            elif self.peek(1) and self.peek(1) in "0123456789@*#?$!-":
                self.take(self.i + 2)
                word.add("other")
            else:
                self.take(self.i + 1)
                word.add("lit", "$")

    def double_quoted(self, word):
        self.i += 1  # the opening quote
        while self.i < len(self.s) and self.peek() != '"':
            c = self.peek()
            if c == "\\" and self.peek(1) in '"\\$`\n':
                word.add("lit", self.peek(1))
                self.take(self.i + 2)
            else:
                self.expansion_or_char(word)
        self.i += 1  # the closing quote

    def expansion_or_char(self, word):
        """At a `$`, a backquote or a plain character: adds it to `word`."""
        c = self.peek()
        if c == "$":
            self.dollar(word)
        elif c == "`":
            self.backquote(word)
        else:
            word.add("lit", c)
            self.take(self.i + 1)

    def backquote(self, word):
        line = self.line
        j = self.i + 1
        while j < len(self.s) and self.s[j] != "`":
            j += 2 if self.s[j] == "\\" else 1
        text = self.take(min(j + 1, len(self.s)))
        self.nested.append((text[1:-1], line))
        word.add("other")

    def emit_word(self, word):
        if word is not None and (word.parts or word.quoted or word.array is not None):
            self.tokens.append(("word", word, word.line))

    def newline(self):
        self.tokens.append(("op", "\n", self.line))
        self.take(self.i + 1)
        # Heredoc bodies follow the line that opened them.
        for delim, strip in self.heredocs:
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                body_line = self.s[self.i:end]
                self.take(min(end + 1, len(self.s)))
                if (body_line.lstrip("\t") if strip else body_line) == delim:
                    break
        self.heredocs = []

    def run(self):
        s = self.s
        word = None
        while self.i < len(s):
            c = s[self.i]
            if c in " \t":
                self.emit_word(word)
                word = None
                self.i += 1
                continue
            if c == "\n":
                self.emit_word(word)
                word = None
                self.newline()
                continue
            if c == "#" and word is None:
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
                continue
            if c == "\\":
                if self.peek(1) == "\n":
                    self.take(self.i + 2)
                    continue
                word = word or Word(self.line)
                word.add("lit", self.peek(1))
                self.i += 2
                continue
            op = next((o for o in self.OPS if s.startswith(o, self.i)), None)
            if op:
                # NAME=( ... ): an array assignment, kept as one word.
                if op == "(" and word is not None and word.literal() is not None and \
                        re.match(r"^[A-Za-z_][A-Za-z0-9_]*\+?=$", word.literal()):
                    line = self.line
                    end = self.matching(self.i + 1, "(", ")")
                    inner = self.take(end)[1:-1]
                    sub = Lexer(inner, line, self.nested)
                    sub.run()
                    word.array = [t[1] for t in sub.tokens if t[0] == "word"]
                    continue
                # <(...) and >(...): process substitution.
                if op in ("<", ">") and self.peek(1) == "(":
                    line = self.line
                    end = self.matching(self.i + 2, "(", ")")
                    self.nested.append((self.take(end)[2:-1], line))
                    word = word or Word(line)
                    word.add("other")
                    continue
                # (( ... )) where a command starts: arithmetic.
                if op == "(" and self.peek(1) == "(" and word is None and self.command_start():
                    self.take(self.matching(self.i + 2, "((", "))"))
                    self.tokens.append(("word", Word(self.line), self.line))
                    continue
                # 2>&1, 9>&-: the digits name a file descriptor.
                if op[0] in "<>" and word is not None and (word.literal() or "x").isdigit() and not word.quoted:
                    word = None
                self.emit_word(word)
                word = None
                self.take(self.i + len(op))
                if op in ("<<", "<<-"):
                    while self.peek() in (" ", "\t"):
                        self.i += 1
                    m = re.match(r"""['"]?([^\s'";|&<>()]+)['"]?""", s[self.i:])
                    if m:
                        self.heredocs.append((m.group(1), op == "<<-"))
                        self.i += m.end()
                    self.tokens.append(("op", "heredoc", self.line))
                    continue
                self.tokens.append(("op", op, self.line))
                continue
            word = word or Word(self.line)
            if c == "'":
                end = s.find("'", self.i + 1)
                end = len(s) if end < 0 else end
                word.add("lit", s[self.i + 1:end])
                word.quoted = True
                self.take(end + 1)
            elif c == "$" and self.peek(1) == "'":
                j = self.i + 2
                while j < len(s) and s[j] != "'":
                    j += 2 if s[j] == "\\" else 1
                word.add("lit", s[self.i + 2:j])
                word.quoted = True
                self.take(j + 1)
            elif c == '"':
                word.quoted = True
                self.double_quoted(word)
            else:
                self.expansion_or_char(word)
        self.emit_word(word)
        return self.tokens

    def command_start(self):
        if not self.tokens:
            return True
        kind, value, _ = self.tokens[-1]
        if kind == "op":
            return value not in self.REDIRECTS
        lit = value.literal()
        return lit in ("for", "if", "while", "until", "do", "then", "else", "elif", "!", "time") and not value.quoted


def simple_commands(tokens):
    """Splits tokens into simple commands: (words, redirect targets).
    Returns them with the function names defined and the for-loop lists."""
    commands, functions, loops = [], set(), []
    cur, redirs = [], []
    case_stack = []
    i = 0

    def flush():
        nonlocal cur, redirs
        if cur:
            commands.append((cur, redirs))
        cur, redirs = [], []

    while i < len(tokens):
        kind, value, _ = tokens[i]
        if case_stack and case_stack[-1] == "pattern":
            if kind == "word" and value.literal() == "esac" and not value.quoted:
                case_stack.pop()
            elif kind == "op" and value == ")":
                case_stack[-1] = "body"
            i += 1
            continue
        if kind == "op":
            if value in Lexer.REDIRECTS:
                if i + 1 < len(tokens) and tokens[i + 1][0] == "word":
                    redirs.append((value, tokens[i + 1][1]))
                    i += 1
            elif value == "heredoc":
                pass
            else:
                flush()
                if value in (";;", ";&", ";;&") and case_stack:
                    case_stack[-1] = "pattern"
            i += 1
            continue
        lit = None if value.quoted else value.literal()
        if not cur:
            if lit in KEYWORDS:
                i += 1
                continue
            if lit == "[[":
                while i < len(tokens) and not (tokens[i][0] == "word" and tokens[i][1].literal() == "]]"):
                    i += 1
                i += 1
                continue
            if lit in ("for", "select"):
                var = tokens[i + 1][1].literal() if i + 1 < len(tokens) and tokens[i + 1][0] == "word" else None
                i += 2
                items = []
                if i < len(tokens) and tokens[i][0] == "word" and tokens[i][1].literal() == "in":
                    i += 1
                    while i < len(tokens) and tokens[i][0] == "word":
                        items.append(tokens[i][1])
                        i += 1
                if var and NAME.match(var):
                    loops.append((var, items))
                continue
            if lit == "case":
                while i < len(tokens) and not (tokens[i][0] == "word" and tokens[i][1].literal() == "in"):
                    i += 1
                case_stack.append("pattern")
                i += 1
                continue
            if lit == "esac" and case_stack:
                case_stack.pop()
                i += 1
                continue
            if lit == "function" and i + 1 < len(tokens) and tokens[i + 1][0] == "word":
                functions.add(tokens[i + 1][1].literal())
                i += 2
                continue
            if lit and i + 2 < len(tokens) and tokens[i + 1][1:2] == ("(",) and tokens[i + 2][1:2] == (")",):
                functions.add(lit)
                i += 3
                continue
        cur.append(value)
        i += 1
    flush()
    return commands, functions, loops


class Script:
    """The commands one script calls: parse(), then calls is a list of
    (command, line)."""

    def __init__(self, text, path=None, root=None, sourcing=()):
        self.vars = {}  # name -> list of values, each a list of Words
        self.functions = set()
        self.calls = []
        self.commands = []
        self.path, self.root, self.sourcing = path, root, sourcing
        self.collect(text, 1)
        for words, redirs in self.commands:
            self.assignments(words, redirs)
        if path is not None:
            self.sourced(path, root, sourcing)
        for words, _ in self.commands:
            self.command(words, 0)

    def collect(self, text, line):
        nested = []
        tokens = Lexer(text, line, nested).run()
        commands, functions, loops = simple_commands(tokens)
        self.commands += commands
        self.functions |= functions
        for var, items in loops:
            for item in items:
                self.vars.setdefault(var, []).append([item])
        for sub, sub_line in nested:
            self.collect(sub, sub_line)

    def sourced(self, path, root, sourcing):
        """The functions and variables of the files this script sources
        (`. "$HERE/redis-lib.sh"`), found by the path's literal tail."""
        for words, _ in self.commands:
            if words[0].literal() not in (".", "source") or len(words) < 2 or not words[1].parts:
                continue
            tail = words[1].parts[-1][1] if words[1].parts[-1][0] == "lit" else ""
            for base in (path.parent, root):
                other = (base / tail.lstrip("/")).resolve()
                if tail and other.is_file() and other not in sourcing:
                    lib = Script(other.read_text(encoding="utf-8"), other, root, sourcing + (path,))
                    self.functions |= lib.functions
                    for name, values in lib.vars.items():
                        self.vars.setdefault(name, []).extend(values)
                    break

    def assignments(self, words, redirs):
        """NAME=value (also after local, declare, export, readonly), and
        read -a NAME <<<"words"."""
        first = words[0].literal() if not words[0].quoted else None
        start = 1 if first in ("local", "declare", "typeset", "export", "readonly") else 0
        for w in words[start:]:
            text = w.parts[0][1] if w.parts and w.parts[0][0] == "lit" else ""
            m = ASSIGN.match(text)
            if not m:
                if start:
                    continue
                break
            name = m.group(1)
            if w.array is not None:
                self.vars.setdefault(name, []).append(w.array)
            else:
                value = Word(w.line)
                value.parts = [("lit", text[m.end():])] + w.parts[1:]
                if value.parts[0][1] == "":
                    value.parts = value.parts[1:]
                # NAME="" is one empty word where "$NAME" stands (no command:
                # the next word is not one either), unlike an empty array.
                self.vars.setdefault(name, []).append([value if value.parts else Word.of("", w.line)])
        if first == "read":
            names = [w.literal() for w in words[1:] if w.literal() and NAME.match(w.literal())]
            for op, target in redirs:
                if op == "<<<" and names:
                    self.vars.setdefault(names[-1], []).append(split_value(target))

    def resolve(self, word, seen=frozenset()):
        """The values a word can have, each a list of words (several for an
        array or a default with spaces); [] for a value that is empty.
        Words that cannot be known are left out."""
        if word.array is not None:
            return []
        lit = word.literal()
        if lit is not None:
            return [[word]]
        if len(word.parts) == 1 and word.parts[0][0] == "var":
            _, name, default = word.parts[0]
            out = []
            if default is not None:
                out.append(split_value(Word.of(default, word.line)))
            if name not in seen:
                for value in self.vars.get(name, []):
                    if not value:
                        out.append([])
                        continue
                    for head in self.resolve(value[0], seen | {name}):
                        out.append(head + value[1:])
            return out
        # Text and variables: each variable must have literal values.
        texts = [""]
        for part in word.parts:
            if part[0] == "lit":
                texts = [t + part[1] for t in texts]
            elif part[0] == "var":
                values = []
                for value in self.vars.get(part[1], []) if part[1] not in seen else []:
                    if len(value) == 1:
                        for r in self.resolve(value[0], seen | {part[1]}):
                            if len(r) == 1 and r[0].literal() is not None:
                                values.append(r[0].literal())
                if part[2] is not None:
                    values.append(part[2])
                if not values:
                    return []
                texts = [t + v for t in texts for v in values][:16]
            else:
                return []
        return [[Word.of(t, word.line)] for t in texts]

    def record(self, name, line):
        self.calls.append((name, line))

    def command(self, words, depth):
        """Records the command that `words` (a simple command) runs."""
        if depth > 8:
            return
        i = 0
        while i < len(words) and (words[i].array is not None or words[i].is_assignment()):
            i += 1
        if i >= len(words):
            return
        head, rest = words[i], words[i + 1:]
        if head.literal() is None:
            for value in self.resolve(head):
                if value:
                    self.command(value + rest, depth + 1)
                else:
                    self.command(rest, depth + 1)
            return
        name = head.literal()
        if not COMMAND_NAME.match(name):
            return
        line = head.line
        if name in self.functions:
            if name in HELPERS:
                self.command(rest[HELPERS[name]:], depth + 1)
            return
        self.record(name, line)
        args = [w.literal() for w in rest]
        if name in WRAPPER_ARGS:
            j = 0
            takes = WRAPPER_ARGS[name]
            while j < len(rest) and (args[j] or "").startswith("-") and args[j] != "-":
                if args[j] == "--":
                    j += 1
                    break
                j += 2 if args[j] in takes else 1
            if name == "env":
                while j < len(rest) and rest[j].is_assignment():
                    j += 1
            j += WRAPPER_POSITIONAL.get(name, 0)
            self.command(rest[j:], depth + 1)
        elif name == "command":
            if args and args[0] in ("-v", "-V"):
                for w in rest[1:]:
                    for value in self.resolve(w):
                        if value and value[0].literal() and COMMAND_NAME.match(value[0].literal()):
                            self.record(value[0].literal(), w.line)
            else:
                self.command(rest, depth + 1)
        elif name in ("bash", "sh") and "-c" in args:
            code = rest[args.index("-c") + 1] if args.index("-c") + 1 < len(rest) else None
            if code is not None and code.literal() is not None:
                self.subscript(code.literal(), code.line, depth)
        elif name == "trap" and rest and rest[0].literal() is not None:
            self.subscript(rest[0].literal(), rest[0].line, depth)
        elif name in ("python3", "python") and "-m" in args:
            k = args.index("-m") + 1
            if k < len(args) and args[k]:
                self.record(f"python3:{args[k]}", line)
        elif name == "cargo" and rest:
            sub = next((a for a in args if a is None or not a.startswith("-")), None)
            if sub and sub not in CARGO_OWN and COMMAND_NAME.match(sub):
                self.record(f"cargo-{sub}", line)

    def subscript(self, code, line, depth):
        inner = Script.__new__(Script)
        inner.vars, inner.functions, inner.calls, inner.commands = self.vars, set(self.functions), [], []
        inner.path, inner.root, inner.sourcing = self.path, self.root, self.sourcing
        inner.collect(code, line)
        if self.path is not None:
            inner.sourced(self.path, self.root, self.sourcing)
        for words, _ in inner.commands:
            inner.command(words, depth + 1)
        self.calls += inner.calls


def split_value(word):
    """A word's literal text, or a variable default, split on blanks."""
    if word.literal() is not None:
        return [Word.of(t, word.line) for t in word.literal().split()]
    if len(word.parts) == 1 and word.parts[0][0] == "var" and word.parts[0][2] is not None:
        return [Word.of(t, word.line) for t in word.parts[0][2].split()]
    return [word]


PY_CALL = re.compile(r"""(?:subprocess\.(?:run|Popen|call|check_call|check_output)\(\s*\[\s*|shutil\.which\(\s*)"""
                     r"""["']([A-Za-z0-9_.+-]+)["']""")


def python_calls(text):
    return [(m.group(1), text.count("\n", 0, m.start()) + 1) for m in PY_CALL.finditer(text)]


# --- deps.txt -------------------------------------------------------------

class Deps:
    """c_tests/deps.txt: `PARTS COMMANDS PACKAGE` lines, `script GLOB PART`
    lines and `minimal PACKAGE...` lines."""

    SPECIAL = {"base", "rust"}

    def __init__(self, text, origin="deps.txt"):
        self.entries = []  # (parts, commands, package, line)
        self.scripts = []  # (glob, part)
        self.minimal = set()
        self.errors = []
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.split("#", 1)[0].split()
            if not line:
                continue
            if line[0] == "minimal":
                self.minimal |= set(line[1:])
            elif line[0] == "script":
                if len(line) != 3:
                    self.errors.append(f"{origin}:{number}: want `script GLOB PART`")
                else:
                    self.scripts.append((line[1], line[2]))
            elif len(line) == 3:
                self.entries.append((set(line[0].split(",")), line[1].split(","), line[2], number))
            else:
                self.errors.append(f"{origin}:{number}: want `PARTS COMMANDS PACKAGE`, got {raw.strip()!r}")
        for parts, _, package, number in self.entries:
            if "base" in parts and package not in self.minimal:
                self.errors.append(f"{origin}:{number}: {package} is listed as base, but it is not in the "
                                   f"`minimal` packages (Debian 12's packages of priority required)")

    def part_of(self, relpath):
        for glob, part in self.scripts:
            if fnmatch.fnmatchcase(relpath, glob):
                return part
        return "core"

    def allowed(self, command, part):
        """Is `command` listed for `part` (or core, base, rust, self)?"""
        for parts, commands, package, _ in self.entries:
            if command not in commands:
                continue
            # Every run installs core, but for the demo, which asks for demo alone.
            if parts & {"base", "rust"} or package in ("self", "-") or part in parts or part == "any" or \
                    ("core" in parts and part != "demo"):
                return True
        return False

    def listed_for(self, command):
        return sorted({p for parts, commands, _, _ in self.entries if command in commands for p in parts})


def scripts(root):
    found = sorted(set(root.glob("c_tests/**/*.sh")) | set(root.glob("cmake/*.sh")) | set(root.glob("bench/*.sh")))
    for extra in ("fuzz/run.sh", ".ci/run"):
        if (root / extra).is_file():
            found.append(root / extra)
    found += sorted(set(root.glob("c_tests/*.py")) | set(root.glob("bench/*.py")))
    return [p for p in found if "target" not in p.relative_to(root).parts]


def check(root, deps_path, show=False):
    deps = Deps(deps_path.read_text(encoding="utf-8"), str(deps_path.relative_to(root)))
    problems = list(deps.errors)
    checked = 0
    for path in scripts(root):
        rel = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py":
            calls = python_calls(text)
        else:
            calls = Script(text, path, root).calls
        part = deps.part_of(rel)
        seen = set()
        for command, line in calls:
            if command in seen:
                continue
            seen.add(command)
            checked += 1
            if show:
                print(f"{rel}:{line}: {command} [{part}; listed for {','.join(deps.listed_for(command)) or '-'}]")
            if not deps.allowed(command, part):
                where = deps.listed_for(command)
                why = f"listed only for {', '.join(where)}" if where else "not in c_tests/deps.txt"
                problems.append(f"{rel}:{line}: '{command}' ({part}): {why}")
    return problems, checked


def self_test():
    """An unlisted command, one listed for another part, and one in each
    place the parser looks must be found; what is not a command must not."""
    deps = """
minimal coreutils bash
script c_tests/netfault/* netfault
base echo,cat,true,set,cd,trap,command,bash,.,timeout,env,sleep coreutils
rust cargo rustup
core cc gcc
netfault iptables iptables
windows wine wine
"""
    cases = [
        # (script path, text, expected unlisted commands)
        ("c_tests/a.sh", "echo hi\ncat x | sleep 1\n", []),
        ("c_tests/b.sh", "set -e\nfrobnicate --now\n", ["frobnicate"]),
        ("c_tests/netfault/c.sh", "iptables -F\nwine x.exe\n", ["wine"]),
        ("c_tests/d.sh", "iptables -F\n", ["iptables"]),
        ("c_tests/e.sh", 'x=$(timeout 5 hidden1 a)\nenv -u CI A=1 hidden2\n', ["hidden1", "hidden2"]),
        ("c_tests/f.sh", 'bash -c "cd /x && hidden3"\ntrap \'hidden4 "$T"\' EXIT\n', ["hidden3", "hidden4"]),
        ("c_tests/g.sh", 'X=${X:-hidden5}\n"$X" run\nfor t in hidden6; do command -v "$t"; done\n',
         ["hidden5", "hidden6"]),
        ("c_tests/h.sh", "# hidden7 in a comment\necho 'hidden8 in a string'\n"
         "cat <<EOF\nhidden9 in a heredoc\nEOF\n", []),
        ("c_tests/i.sh", 'f() { echo; }\nf\ncase $1 in\nstart) sleep 1 ;;\n*) true ;;\nesac\n'
         '[[ $a =~ ^(x|y)$ ]] && echo\n', []),
        ("c_tests/j.sh", 'S=()\n"${S[@]}" hidden10\nM=x86\n$M-hidden11 -v\ncargo fuzz run\n',
         ["hidden10", "x86-hidden11", "cargo-fuzz"]),
        # (split, so that this file's own scan does not find it)
        ("c_tests/k.py", "import subprocess\nsubprocess." + 'run(["hidden12", "-x"])\n', ["hidden12"]),
        ("c_tests/l.sh", '. "$HERE/lib.sh"\nhelper\n', []),
        # "$P" with P empty is the command word itself (bench/restore.sh's
        # "$PEER" clean ...): the word after it is an argument.
        ("c_tests/m.sh", 'P=""\nP=$1\n"$P" notcmd13 --x\n', []),
        ("c_tests/lib.sh", "helper() { sleep 1; }\n", []),
    ]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "c_tests/netfault").mkdir(parents=True)
        (root / "c_tests/deps.txt").write_text(deps)
        for rel, text, _ in cases:
            (root / rel).write_text(text)
        problems, _ = check(root, root / "c_tests/deps.txt")
        for rel, _, want in cases:
            got = sorted(re.search(r"'([^']*)'", p).group(1) for p in problems if p.startswith(rel + ":"))
            if got == sorted(want):
                print(f"ok - {rel}: {'unlisted: ' + ', '.join(got) if got else 'nothing unlisted'}")
            else:
                print(f"FAIL - {rel}: unlisted {got}, expected {sorted(want)}")
                failures += 1
        bad = Deps("minimal bash\nbase iptables iptables\n").errors
        if bad and "not in the `minimal` packages" in bad[0]:
            print("ok - a base line whose package is not in the minimal system is refused")
        else:
            print(f"FAIL - a base line with a package outside the minimal system: {bad}")
            failures += 1
    print(f"{len(cases) + 1 - failures} passed, {failures} failed")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--list", action="store_true", help="print every command found, with its part")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    root = a.root.resolve()
    problems, checked = check(root, root / "c_tests/deps.txt", a.list)
    for p in problems:
        print(f"FAIL - {p}")
    print(f"check-deps: {checked} command uses in {len(scripts(root))} scripts; "
          f"{len(problems)} not in c_tests/deps.txt for their part")
    print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
