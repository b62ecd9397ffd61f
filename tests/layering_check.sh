#!/usr/bin/env bash
# Fails when a file under src/ includes a header of a stage above its own.
# The stages, lowest first: what a stage may use lies to its left.
#   common → policy → codec → catalog → sql → run → command → main.c
# So the daemon's internals (run/) are never included by a subcommand, and
# the pure decision code (policy/) includes nothing but common/.
set -euo pipefail
cd "$(dirname "$0")/.."
rank() {
    case $1 in
    common) echo 0 ;; policy) echo 1 ;; codec) echo 2 ;; catalog) echo 3 ;;
    sql) echo 4 ;; run) echo 5 ;; command) echo 6 ;; *) echo 99 ;;
    esac
}
bad=0
for f in src/*/*.c src/*/*.h; do
    stage=$(basename "$(dirname "$f")")
    own=$(rank "$stage")
    [ "$own" = 99 ] && { echo "layering: $f is in no known stage folder"; bad=1; continue; }
    while read -r inc; do
        s=${inc%%/*}
        r=$(rank "$s")
        if [ "$r" = 99 ]; then
            echo "layering: $f includes \"$inc\", which is in no stage folder"
            bad=1
        elif [ "$r" -gt "$own" ]; then
            echo "layering: $f ($stage) includes \"$inc\" ($s is above it)"
            bad=1
        fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
if [ "$(find src -maxdepth 1 -type f | wc -l)" != 1 ] || [ ! -f src/main.c ]; then
    echo "layering: src/ must hold main.c alone at its top"
    bad=1
fi
# No file over ~700 lines: a file that grows past it holds two concerns.
while read -r n f; do
    [ "$f" = total ] && continue
    [ "$n" -gt 750 ] && { echo "layering: $f has $n lines (limit 750)"; bad=1; }
done < <(wc -l src/*.c src/*/*.c src/*/*.h)
[ $bad -eq 0 ] && echo "layering: every include points at its own stage or one below"
exit $bad
