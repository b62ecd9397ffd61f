#!/usr/bin/env bash
# Fails when the docs have drifted from the code: docs/config-reference.md is
# not what `pgscribe check-config --markdown` prints, a function named in
# docs/architecture.md no longer exists in src/, a link of README.md or docs/
# is broken, a subcommand's --help is not in the common shape, or
# `pgscribe version` misses a line.
#
# usage: tests/docs_check.sh [PGSCRIBE_BINARY]   (default build/pgscribe)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/pgscribe}
bad=0
complain() { echo "docs: $*"; bad=1; }

# 1. The settings reference is generated, never edited by hand.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$BIN" check-config --markdown >"$tmp"
if ! diff -u docs/config-reference.md "$tmp" >&2; then
    complain "docs/config-reference.md differs from 'pgscribe check-config --markdown';" \
        "regenerate it: $BIN check-config --markdown > docs/config-reference.md"
fi

# 2. Every `name()` in the walk-through names a function defined in src/ (a
#    library function, rd_kafka_* or PQ*, must at least be called there).
nfun=0
for f in $(grep -o '`[A-Za-z_][A-Za-z0-9_]*()`' docs/architecture.md | tr -d '`()' | sort -u); do
    nfun=$((nfun + 1))
    if [[ $f == rd_kafka_* || $f == PQ* ]]; then
        grep -rqE "\\b$f\\(" src/ || complain "docs/architecture.md names $f(), which src/ never calls"
    else
        grep -rqE "^[A-Za-z][^;]*[ *]$f\\(" src/ --include=*.c ||
            complain "docs/architecture.md names $f(), which is not defined in src/"
    fi
done
((nfun > 20)) || complain "docs/architecture.md names only $nfun functions"

# 3. Every relative link of README.md and docs/ points at a file that exists
#    and, with #anchor, at one of its headings (GitHub's anchor rules).
python3 - <<'PY' || complain "broken links (above)"
import re, os, sys
def anchors(path):
    out=set(); fence=False
    for l in open(path):
        if l.startswith('```'): fence=not fence
        m=None if fence else re.match(r'^#+ (.*)', l)
        if m:
            a=m.group(1).strip().lower()
            a=re.sub(r'[^\w\- ]','',a).replace(' ','-')
            out.add(a)
    return out
bad=0
files=['README.md']+['docs/'+f for f in os.listdir('docs') if f.endswith('.md')]+['schemas/avro/README.md','tests/bench/README.md']
for f in files:
    for m in re.finditer(r'\]\(([^)\s]+)\)', open(f).read()):
        t=m.group(1)
        if t.startswith('http'): continue
        p,_,a=t.partition('#')
        target=os.path.normpath(os.path.join(os.path.dirname(f), p)) if p else f
        if not os.path.exists(target): print('docs:', f, 'links to a missing file:', t); bad=1; continue
        if a and target.endswith('.md') and a not in anchors(target): print('docs:', f, 'links to a missing heading:', t); bad=1
sys.exit(bad)
PY

# 4. One help shape: "usage: pgscribe CMD", a one-line description right
#    after the usage lines, an "options:" and an "exit codes:" section.
cmds=$("$BIN" --help | awk '/^commands:/ {on = 1; next} on && /^$/ {exit} on {print $1}')
[[ -n $cmds ]] || complain "pgscribe --help lists no commands"
for c in "" $cmds; do
    label="pgscribe${c:+ $c} --help"
    if ! out=$("$BIN" $c --help 2>&1); then
        complain "$label exits non-zero"
        continue
    fi
    want="usage: pgscribe ${c:-<command>}"
    [[ $(head -n 1 <<<"$out") == "$want"* ]] || complain "$label: first line is not '$want ...'"
    desc=$(awk 'NR == 1 {next} /^ / && !seen {next} {print; exit}' <<<"$out")
    [[ -n $desc && $desc != *: ]] || complain "$label: no one-line description after the usage line"
    next=$(awk 'NR == 1 {next} /^ / && !seen {next} {n++} n == 2 {print; exit}' <<<"$out")
    [[ -z $next ]] || complain "$label: the description is more than one line"
    grep -qx 'options:' <<<"$out" || complain "$label: no 'options:' section"
    grep -qx 'exit codes:' <<<"$out" || complain "$label: no 'exit codes:' section"
    grep -qE '^  0  ' <<<"$out" || complain "$label: exit codes do not list 0"
done

# 5. pgscribe version names the commit and every library it runs with.
ver=$("$BIN" version)
for re in '^pgscribe [0-9.]+ \(commit ([0-9a-f]{7,}|unknown)\)' '^librdkafka [0-9]' '^libpq [0-9]+\.[0-9]+$' \
    '^avro-c [0-9]' '^jansson [0-9]' '^openssl OpenSSL [0-9]'; do
    grep -qE "$re" <<<"$ver" || complain "pgscribe version has no line matching /$re/"
done

((bad == 0)) && echo "docs: config reference current, $nfun functions of architecture.md found," \
    "$(wc -w <<<"$cmds") subcommands' help in shape, version complete"
exit $bad
