#!/usr/bin/env python3
"""fresh_check.py - every external command the tests and scripts run must come
from a package that deps.sh installs, or from Debian's base system.

A developer's machine collects packages installed by hand; a fresh machine has
only what deps.sh installs. This finds the commands our scripts and tests
execute, asks dpkg which package owns each, and fails when that package is
neither named in deps.sh (or pulled in by one it names) nor part of the base
system (Priority: required or important, what every Debian system has).

  tests/fresh_check.py [-v]      exit 0, or 1 with one line per problem

How commands are found (docs/HACKING.md, "Tests and their dependencies"):
- shell scripts: the word in command position of each line (after ;, |, &&,
  ||, $( and the like), skipping heredoc bodies, builtins and functions (its
  own, and those of a script it sources from its own directory);
- Python: the first element of the argument list given to subprocess.run,
  Popen, check_output and friends, and names given to shutil.which;
- our own programs (smtpd, pop3d, mailcli, built test tools) are skipped.
"""
import os
import re
import shutil
import subprocess
import sys

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERBOSE = "-v" in sys.argv[1:]

OWN = {"smtpd", "pop3d", "mailcli", "smtp_load", "pop3_load", "replay"}
SH_SKIP = set("""
if then else elif fi for while until do done case esac in function select time
! { } [ [[ ]] test echo printf read set unset export local return exit shift
cd pwd trap wait kill eval exec source . true false break continue command
type hash ulimit umask alias getopts let declare typeset readonly builtin
sudo SUDO env nohup jobs fg bg disown mapfile shopt
""".split())

# Scripts that `./test.sh` and `./demo.sh` run, and the tests CTest runs.
# Benchmarks and fuzzing are run by hand and install their own extras
# (deps.sh --bench, deps.sh --fuzz); they are checked against those.
def files():
    for top in ("test.sh", "demo.sh", "deps.sh", ".ci/run"):
        yield os.path.join(SRC, top), "test"
    for root, dirs, names in os.walk(os.path.join(SRC, "tests")):
        dirs[:] = [d for d in dirs if d not in ("corpus", "__pycache__")]
        for n in sorted(names):
            if n.endswith((".sh", ".py")) or n == "run":
                p = os.path.join(root, n)
                rel = os.path.relpath(p, SRC)
                kind = "bench" if rel.startswith("tests/bench/") else \
                       "fuzz" if rel.startswith("tests/fuzz/") else "test"
                yield p, kind


SEP, CONT = "\x1f", "\x1e"    # a command boundary; a continued line


def shell_code(text):
    """TEXT with comments, heredoc bodies, quoted words and arithmetic blanked
    out, keeping the commands inside $( ) even within double quotes. Command
    boundaries become newlines; line numbers are kept."""
    out, i, n = [], 0, len(text)
    stack = ["sh"]                      # sh, dq (double quotes), arith
    heredocs, line_start = [], True
    while i < n:
        c, state = text[i], stack[-1]
        if c == "\\" and text.startswith("\n", i + 1) and state != "dq":
            out.append(CONT)              # a continued line: one command
            i += 2
            continue
        if c == "\n":
            out.append("\n")
            i += 1
            if heredocs and state == "sh":  # skip heredoc bodies
                for word in heredocs:
                    while i < n:
                        j = text.find("\n", i)
                        j = n if j == -1 else j
                        body, i = text[i:j], j + 1
                        out.append("\n")
                        if body.strip() == word:
                            break
                heredocs = []
            continue
        if state == "sh":
            if c == "#" and (i == 0 or text[i - 1] in " \t\n;(|&"):
                j = text.find("\n", i)
                i = n if j == -1 else j
                continue
            if c == "'":
                j = text.find("'", i + 1)
                i = n if j == -1 else j + 1
                out.append("@Q")
                continue
            if c == '"':
                stack.append("dq")
                out.append("@Q")
                i += 1
                continue
            if text.startswith("<<", i) and not text.startswith("<<<", i):
                m = re.match(r"<<-?\s*['\"]?(\w+)['\"]?", text[i:])
                if m:
                    heredocs.append(m.group(1))
                    i += m.end()
                    continue
            if text.startswith("$((", i):
                stack.append("arith")
                i += 3
                continue
            if text.startswith("$(", i) or text.startswith("<(", i) or c == "`":
                stack.append("sub" if c != "`" else "bq")
                out.append(SEP)
                i += 2 if c != "`" else 1
                continue
            if c == ")" and len(stack) > 1 and stack[-1] == "sub":
                stack.pop()
                out.append(SEP + "@S ")   # the outer command goes on
                i += 1
                continue
            out.append(SEP if c in ";|&" else c)
            i += 1
            continue
        if state in ("sub", "bq"):
            if state == "bq" and c == "`":
                stack.pop()
                out.append(SEP + "@S ")   # the outer command goes on
                i += 1
                continue
            # a substitution is shell code up to its ')'
            if c == ")" and state == "sub":
                stack.pop()
                out.append(SEP + "@S ")   # the outer command goes on
                i += 1
                continue
            if c == '"':
                stack.append("dq")
                out.append("@Q")
                i += 1
                continue
            if c == "'":
                j = text.find("'", i + 1)
                i = n if j == -1 else j + 1
                out.append("@Q")
                continue
            if text.startswith("$((", i):
                stack.append("arith")
                i += 3
                continue
            if text.startswith("$(", i) or text.startswith("<(", i):
                stack.append("sub")
                out.append(SEP)
                i += 2
                continue
            out.append(SEP if c in ";|&" else c)
            i += 1
            continue
        if state == "dq":
            if c == "\\":
                i += 2
                continue
            if c == '"':
                stack.pop()
                i += 1
                continue
            if text.startswith("$((", i):
                stack.append("arith")
                i += 3
                continue
            if text.startswith("$(", i):
                stack.append("sub")
                out.append(SEP)
                i += 2
                continue
            i += 1
            continue
        if state == "arith":
            if text.startswith("))", i):
                stack.pop()
                i += 2
                continue
            i += 1
            continue
    return "".join(out)


FUNC = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*\(\)\s*\{", re.M)
SOURCED = re.compile(r"^\s*(?:\.|source)\s+.*?([\w.-]+\.sh)\"?\s*$", re.M)


def sourced_funcs(path, text):
    """The functions of the scripts that the script at path sources from its
    own directory (`. "$(dirname "$0")/lib.sh"`): commands of ours too."""
    funcs = set()
    for name in SOURCED.findall(text):
        lib = os.path.join(os.path.dirname(path), name)
        if os.path.exists(lib):
            funcs |= set(FUNC.findall(open(lib, encoding="utf-8", errors="replace").read()))
    return funcs


def shell_commands(text, funcs=frozenset()):
    """(line number, command word) for each command position in a shell
    script; funcs: functions it gets from elsewhere (sourced_funcs())."""
    funcs = set(FUNC.findall(text)) | set(funcs)
    no = 1
    for seg in re.split(r"(\n|\x1f)", shell_code(text)):
        if seg in ("\n", SEP):
            no += seg == "\n"
            continue
        line_no = no
        no += seg.count(CONT)
        seg = seg.replace(CONT, " ")
        for part in re.split(r"\|\||&&|\(|\)|\{|\}|\bthen\b|\bdo\b|\belse\b", seg):
            words = part.split()
            while words and (re.match(r"^\w+=", words[0]) or words[0] in
                             ("!", "sudo", "exec", "env", "nohup", "time", "command", "$SUDO")):
                words.pop(0)
            if not words:
                continue
            w = words[0]
            if w in SH_SKIP or w in funcs or w in OWN or not re.match(r"^[A-Za-z][\w.+-]*$", w):
                continue
            yield line_no, w


CALL = re.compile(r"\b(?:subprocess\.(?:run|Popen|call|check_call|check_output)|"
                  r"shutil\.which)\(\s*\[?\s*['\"]([\w./+-]+)['\"]")


def python_commands(text):
    for m in CALL.finditer(text):
        no = text.count("\n", 0, m.start()) + 1
        yield no, m.group(1)


def deps_packages(mode):
    """Packages deps.sh installs in MODE (test, bench or fuzz), from its own listing."""
    out = subprocess.run([os.path.join(SRC, "deps.sh"), "--list", "--" + mode],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def dpkg_field(pkg, field):
    p = subprocess.run(["dpkg-query", "-W", "-f", "${%s}" % field, pkg],
                       capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else ""


def depends_of(pkg):
    raw = dpkg_field(pkg, "Depends") + "," + dpkg_field(pkg, "Pre-Depends")
    names = set()
    for alt in raw.split(","):
        for choice in alt.split("|"):
            n = choice.strip().split(" ")[0].split(":")[0]
            if n:
                names.add(n)
    return names


def owner(path):
    """The package that owns PATH (following symlinks), or None."""
    for cand in (path, os.path.realpath(path)):
        for probe in (cand, cand.replace("/usr/bin/", "/bin/").replace("/usr/sbin/", "/sbin/")):
            p = subprocess.run(["dpkg-query", "-S", probe], capture_output=True, text=True)
            for line in p.stdout.splitlines() if p.returncode == 0 else ():
                if not line.startswith("diversion by "):   # dash diverts /bin/sh
                    return line.split(":")[0].split(",")[0].strip()
    return None


def main():
    allowed_cache = {}

    def allowed(mode):
        if mode not in allowed_cache:
            named = deps_packages(mode)
            ok = set(named)
            for n in named:
                ok |= depends_of(n)
            allowed_cache[mode] = ok
        return allowed_cache[mode]

    def installed(mode):
        return all("ok installed" in dpkg_field(p, "Status") for p in deps_packages(mode))

    problems, seen, skipped = [], {}, set()
    for path, kind in files():
        if not os.path.exists(path):
            continue
        if kind != "test" and not installed(kind):
            # Without its packages a command cannot be traced to one.
            skipped.add(kind)
            continue
        text = open(path, encoding="utf-8", errors="replace").read()
        is_py = path.endswith(".py") or text.startswith("#!/usr/bin/env python")
        found = python_commands(text) if is_py else shell_commands(text, sourced_funcs(path, text))
        rel = os.path.relpath(path, SRC)
        for no, cmd in found:
            if cmd.endswith("/") or os.path.basename(cmd) in OWN:   # a path being built
                continue
            where = "%s:%d" % (rel, no)
            exe = cmd if cmd.startswith("/") else shutil.which(cmd)
            if exe is None or not os.path.exists(exe):
                problems.append("%s: runs '%s', which is not installed (deps.sh --%s must name "
                                "its package)" % (where, cmd, kind))
                continue
            pkg = owner(exe)
            if pkg is None and not cmd.startswith("/"):
                # A tool manager's copy first on PATH (pyenv's python3, say):
                # a fresh machine runs Debian's, so check that one.
                for d in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
                    if os.path.exists(os.path.join(d, cmd)):
                        exe = os.path.join(d, cmd)
                        pkg = owner(exe)
                        break
            if pkg is None:
                problems.append("%s: runs '%s' (%s), which no Debian package provides" %
                                (where, cmd, exe))
                continue
            prio = dpkg_field(pkg, "Priority")
            if pkg in allowed(kind) or prio in ("required", "important"):
                seen.setdefault(cmd, (pkg, prio, where))
                continue
            problems.append("%s: runs '%s' from package %s, which deps.sh --%s does not install"
                            % (where, cmd, pkg, kind))
    if VERBOSE:
        for cmd, (pkg, prio, where) in sorted(seen.items()):
            print("fresh_check: %-16s %-22s %-9s first at %s" % (cmd, pkg, prio or "-", where))
    for p in problems:
        print("fresh_check: " + p, file=sys.stderr)
    for kind in sorted(skipped):
        print("fresh_check: tests/%s not checked: run deps.sh --%s first" % (kind, kind))
    print("fresh_check: %d commands checked, %d problems" % (len(seen), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
