#!/usr/bin/env bash
# pgscribe's local stack: Debian packages, a throwaway PostgreSQL cluster and a
# real single-node Kafka broker, all state under $PGS_STACK_DIR (default
# <repo>/.stack). Clients source $PGS_STACK_DIR/env.
#
# usage: scripts/stack.sh up|down|status|env
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STACK=${PGS_STACK_DIR:-$(cd "$HERE/.." && pwd)/.stack}

case ${1:-} in
up)
    "$HERE/deps.sh"
    "$HERE/pg.sh" start
    "$HERE/kafka.sh" start
    echo "stack: env in $STACK/env (source it: set -a; . $STACK/env; set +a)"
    ;;
down)
    # Kafka first: nothing of pgscribe's should be left writing to PostgreSQL.
    rc=0
    "$HERE/kafka.sh" stop || rc=1
    "$HERE/pg.sh" stop || rc=1
    exit "$rc"
    ;;
status)
    rc=0
    "$HERE/pg.sh" status || rc=3
    "$HERE/kafka.sh" status || rc=3
    exit "$rc"
    ;;
env)
    # Connection strings only; the stack has no passwords (trust on a private socket).
    [[ -f $STACK/env ]] || { echo "stack: no env file, run scripts/stack.sh up" >&2; exit 1; }
    cat "$STACK/env"
    ;;
*)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
