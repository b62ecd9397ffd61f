#!/usr/bin/env bash
# Compares the clinic tables of two databases row by row (all columns but
# created_at and updated_at); prints ids, never values, of differing rows.
# Usage: compare_tables.sh CONNINFO_A CONNINFO_B
# Exit: 0 if every table is equal and not all are empty, 1 otherwise, 2 on usage.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 CONNINFO_A CONNINFO_B" >&2
    exit 2
fi
A=$1
B=$2
TABLES="patients appointments encounters prescriptions"
MAX_SHOWN=10

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

q() { psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# Column list from side A with id first, so the first field of a row is its id.
columns() {
    q "$A" "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
              FROM information_schema.columns
             WHERE table_schema = 'clinic' AND table_name = '$1'
               AND column_name NOT IN ('id', 'created_at', 'updated_at')"
}

status=0
total=0
for t in $TABLES; do
    cols=$(columns "$t")
    if [ -z "$cols" ]; then
        echo "$t: table not found" >&2
        status=1
        continue
    fi
    # ids repeat across clinics (keys are (clinic_id, id)): clinic_id breaks the tie
    sql="COPY (SELECT id, $cols FROM clinic.$t ORDER BY id, clinic_id) TO STDOUT"
    q "$A" "$sql" >"$work/a"
    q "$B" "$sql" >"$work/b"
    na=$(wc -l <"$work/a")
    nb=$(wc -l <"$work/b")
    total=$((total + na + nb))
    if cmp -s "$work/a" "$work/b"; then
        echo "$t: $na rows, equal"
        continue
    fi
    status=1
    echo "$t: DIFFERENT ($na rows in A, $nb rows in B)"
    # diff keeps both sides in id order; only the id field leaves this script.
    { diff "$work/a" "$work/b" || true; } | awk -F'\t' -v max="$MAX_SHOWN" '
        /^< / { id = substr($1, 3); inA[id] = 1; if (!(id in seen)) { seen[id] = 1; order[n++] = id } }
        /^> / { id = substr($1, 3); inB[id] = 1; if (!(id in seen)) { seen[id] = 1; order[n++] = id } }
        END {
            for (i = 0; i < n && i < max; i++) {
                id = order[i]
                what = (id in inA && id in inB) ? "values differ" : (id in inA ? "only in A" : "only in B")
                printf "  %s: %s\n", id, what
            }
            if (n > max) printf "  ... %d more differing ids\n", n - max
        }'
done

if [ "$total" -eq 0 ]; then
    echo "all tables are empty on both sides: nothing was compared" >&2
    status=1
fi
exit $status
