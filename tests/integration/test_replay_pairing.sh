#!/usr/bin/env bash
# `pgscribe replay` against the stack's real Kafka: it produces only to the
# source topic paired with the dead-letter topic it reads, and it streams.
#
# 1. On the commands dead-letter topic: one dead letter naming the commands
#    topic, one naming the metrics topic, one naming the audit topic, one with
#    no source header. Replay re-produces the first only; the second and third
#    are refused with their partition and offset, nothing reaches the metrics or
#    audit topic, the fourth is skipped. A --dlq topic paired with no source
#    topic is refused outright (exit 3).
# 2. 50 000 dead letters of 2 KiB (about 100 MiB) replay with a peak RSS under
#    80 MiB (/usr/bin/time -v): the replay holds its prefetch and in-flight
#    window, not the topic.
. "$(dirname "$0")/lib.sh"
T_PARTITIONS=4
pgs_test_init replay_pairing
BIG=50000
RSS_MAX_KB=$((80 * 1024))
t_start=$SECONDS
DLQ=$T_RUN.commands.dlq

plant() { # SOURCE_TOPIC_OR_EMPTY KEY VALUE
    local h=()
    [ -n "$1" ] && h=(-H "pgscribe.source.topic=$1")
    printf '%s\n' "$3" | kcat -b "$PGSCRIBE_KAFKA" -P -t "$DLQ" -k "$2" -p 0 \
        -H pgscribe.error.class=validate -H pgscribe.error.code=VALIDATE_UNKNOWN_ENTITY \
        "${h[@]}" || fail "kcat could not plant a dead letter"
}
plant "$T_RUN.commands" clinic-001/patients/a '{"ok":1}'
plant "$T_RUN.metrics" clinic-001/patients/b '{"evil":1}'
plant "$T_RUN.audit" clinic-001/patients/c '{"evil":2}'
plant "" clinic-001/patients/d '{"none":1}'

metrics_before=$(pgs_topic_count "$T_RUN.metrics")
out=$("$PGSCRIBE_BIN" replay -c "$T_CONF" --timeout-ms 20000 2>"$T_DIR/replay1.err") ||
    fail "replay failed: $out $(cat "$T_DIR/replay1.err")"
note "$out"
case "$out" in
"replayed 1 of 4 matching dead letter(s) (1 skipped, 0 failed, 2 refused, 0 undecryptable; 4 read from $DLQ)") ;;
*) fail "unexpected summary: $out" ;;
esac
[ "$(grep -c "partition 0 offset [12] names another source topic than $T_RUN.commands; refused" \
    "$T_DIR/replay1.err")" -eq 2 ] || fail "refusals not reported: $(cat "$T_DIR/replay1.err")"
grep -q "$T_RUN.metrics\|$T_RUN.audit" "$T_DIR/replay1.err" &&
    fail "a planted topic name was echoed: $(cat "$T_DIR/replay1.err")"
[ "$(pgs_topic_count "$T_RUN.commands")" -eq 1 ] || fail "the commands topic lacks the replay"
kcat -b "$PGSCRIBE_KAFKA" -C -t "$T_RUN.commands" -e -q -f '%k\n' | grep -qx clinic-001/patients/a ||
    fail "the replayed message is not the paired one"
[ "$(pgs_topic_count "$T_RUN.audit")" -eq 0 ] || fail "replay wrote to the audit topic"
[ "$(pgs_topic_count "$T_RUN.metrics")" -eq "$metrics_before" ] ||
    fail "replay wrote to the metrics topic"
dry=$("$PGSCRIBE_BIN" replay -c "$T_CONF" --dry-run --timeout-ms 20000 2>/dev/null)
case "$dry" in
"would replay 1 of 4 matching dead letter(s) (1 skipped, 2 refused, 0 undecryptable;"*) ;;
*) fail "unexpected dry run: $dry" ;;
esac
rc=0
"$PGSCRIBE_BIN" replay -c "$T_CONF" --dlq "$T_RUN.metrics" --timeout-ms 20000 \
    >/dev/null 2>"$T_DIR/replay2.err" || rc=$?
[ $rc -eq 3 ] || fail "replay of an unpaired topic exited $rc, expected 3"
grep -q "no source topic is paired" "$T_DIR/replay2.err" || fail "$(cat "$T_DIR/replay2.err")"
note "$(date +%T) pairing: 1 replayed, 2 refused, 1 skipped, unpaired --dlq refused"

# --- streaming: 50 000 dead letters of 2 KiB
python3 - "$T_DIR/big.txt" "$BIG" <<'PY'
import sys
with open(sys.argv[1], "w") as out:
    pad = "x" * 2000
    for i in range(int(sys.argv[2])):
        out.write('{"n":%d,"pad":"%s"}\n' % (i, pad))
PY
kcat -b "$PGSCRIBE_KAFKA" -P -t "$DLQ" -l -H "pgscribe.source.topic=$T_RUN.commands" \
    -H pgscribe.error.class=db-permanent "$T_DIR/big.txt" || fail "kcat could not plant $BIG"
total=$((BIG + 4))
/usr/bin/time -v "$PGSCRIBE_BIN" replay -c "$T_CONF" --class db-permanent --timeout-ms 30000 \
    >"$T_DIR/big.out" 2>"$T_DIR/big.err" || fail "big replay failed: $(tail -n 5 "$T_DIR/big.err")"
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$T_DIR/big.err")
note "$(cat "$T_DIR/big.out"); peak RSS ${rss} KiB"
grep -q "^replayed $BIG of $BIG matching dead letter(s) (0 skipped, 0 failed, 0 refused, 0 undecryptable; $total read" \
    "$T_DIR/big.out" || fail "unexpected summary: $(cat "$T_DIR/big.out")"
[ "$rss" -lt $RSS_MAX_KB ] || fail "replay peak RSS ${rss} KiB >= ${RSS_MAX_KB} KiB"
on_topic=$(pgs_topic_count "$T_RUN.commands")
[ "$on_topic" -eq $((BIG + 1)) ] || fail "commands topic holds $on_topic, expected $((BIG + 1))"
echo "ok: replay produced only to the paired topic (2 refused, 1 skipped); $BIG dead letters" \
    "(~100 MiB) replayed with peak RSS ${rss} KiB < ${RSS_MAX_KB} KiB, $((SECONDS - t_start)) s"
