#!/usr/bin/env bash
# Encrypted dead letters on the real broker. A worker starts without a
# keyring: one control poison command is dead-lettered in clear. The keyring
# is then configured and loaded with SIGHUP; 30 poison commands of three kinds
# (unknown entity, unknown column named by a PHI marker, invalid JSON) each
# carry a unique PHI marker. No marker may appear in the dead-letter topic's
# log segments on the broker's disk (the control marker must: the search
# works), in its headers, in `replay --list`, or in the worker log. `replay`
# without the keyring reports the 30 as undecryptable and exits 1; with it,
# it decrypts and re-produces each once, byte for byte. A sealed value copied
# under headers naming another source offset fails ("authentication failed").
. "$(dirname "$0")/lib.sh"
export T_PARTITIONS=2
# uncompressed batches, so the segment files on disk can be searched
export T_EXTRA_KAFKA_CONF="producer.compression.type = none"
pgs_test_init dlq_encryption
t_start=$SECONDS
NPOISON=30
RING=$T_DIR/keyring
python3 - "$RING" <<'PY'
import base64, os, sys
with open(sys.argv[1], "w") as f:
    f.write("key 7 field * %s current\n" % base64.b64encode(os.urandom(32)).decode())
    f.write("key 8 pseudonym * %s current\n" % base64.b64encode(os.urandom(32)).decode())
PY
chmod 600 "$RING"
CMDS=$T_RUN.commands
DLQ=$T_RUN.commands.dlq

python3 - "$T_DIR" $NPOISON <<'PY'
import json, sys, uuid
d, n = sys.argv[1], int(sys.argv[2])
def cmd(marker, entity="clinic.patients", data=None):
    return {"command_id": str(uuid.uuid4()), "clinic_id": "clinic-00%d" % (1 + len(marker) % 3),
            "actor": "user-1", "entity": entity, "op": "INSERT",
            "key": {"id": str(uuid.uuid4())}, "data": data or {"notes": marker},
            "expected_version": None, "issued_at": 1704067200000}
with open(d + "/control.jsonl", "w") as f:
    f.write(json.dumps(cmd("CTRLMARK-0001", entity="no_such_entity")) + "\n")
markers = []
import os
os.mkdir(d + "/raw")
with open(d + "/poison.jsonl", "w") as f:
    for i in range(n):
        m = "PHIMARK-%04d-%s" % (i, uuid.uuid4().hex[:8])
        markers.append(m)
        if i % 3 == 0:
            f.write(json.dumps(cmd(m, entity="no_such_entity")) + "\n")
        elif i % 3 == 1:  # the marker as a column name
            f.write(json.dumps(cmd(m, data={m.replace("-", "_"): "x", "given_name": m})) + "\n")
        else:  # not JSON at all: no clinic is known
            with open(d + "/raw/bad-%02d.json" % i, "w") as r:
                r.write('{"command_id": "%s", "data": {"notes": "%s"' % (uuid.uuid4(), m))
open(d + "/markers.txt", "w").write("\n".join(markers) + "\n")
PY
sed 's/-/_/g' "$T_DIR/markers.txt" >"$T_DIR/markers_us.txt"
cat "$T_DIR/markers.txt" >>"$T_DIR/markers_us.txt"

pgs_worker_start a
"$PGSCRIBE_BIN" produce -c "$T_CONF" --encoding json --input "$T_DIR/control.jsonl" --no-progress >/dev/null ||
    fail "producing the control command failed"
deadline=$((SECONDS + 60))
until [ "$(pgs_topic_count "$DLQ")" -ge 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "the control command was not dead-lettered within 60 s"
    sleep 0.5
done

# the keyring, loaded by SIGHUP
printf '[crypto]\nkeyring = %s\n' "$RING" >>"$T_CONF"
kill -HUP "$W_PID"
deadline=$((SECONDS + 30))
until grep -q "SIGHUP: keyring reloaded from .*current field key 7" "$T_DIR/worker-a.log"; do
    [ $SECONDS -lt $deadline ] || fail "SIGHUP did not load the keyring: $(tail -n 5 "$T_DIR/worker-a.log")"
    sleep 0.2
done
"$PGSCRIBE_BIN" produce -c "$T_CONF" --encoding json --input "$T_DIR/poison.jsonl" --no-progress \
    >/dev/null || fail "producing the poison commands failed"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --raw-dir "$T_DIR/raw" --no-progress >/dev/null ||
    fail "producing the raw poison messages failed"
got=$(pgs_topic_count "$CMDS")
[ "$got" -eq $((NPOISON + 1)) ] || fail "the commands topic holds $got messages, expected $((NPOISON + 1))"
deadline=$((SECONDS + 90))
until [ "$(pgs_topic_count "$DLQ")" -ge $((NPOISON + 1)) ]; do
    [ $SECONDS -lt $deadline ] ||
        fail "only $(pgs_topic_count "$DLQ") of $((NPOISON + 1)) dead letters within 90 s"
    sleep 0.5
done
sleep 1
pgs_worker_stop "$W_PID"
[ "$(pgs_topic_count "$DLQ")" -eq $((NPOISON + 1)) ] || fail "more dead letters than poison commands"

# 1. the broker's disk: the DLQ topic's segment files
logdirs=$(sed -n 's/^log.dirs=//p' "$PGS_STACK_DIR/kafka/server.properties")
[ -n "$logdirs" ] || fail "no log.dirs in the test stack's server.properties"
segs=()
for d in ${logdirs//,/ }; do
    for p in "$d/$DLQ"-*; do [ -d "$p" ] && segs+=("$p"); done
done
[ ${#segs[@]} -eq 2 ] || fail "found ${#segs[@]} partition folders of $DLQ under $logdirs, expected 2"
grep -rqa "CTRLMARK-0001" "${segs[@]}" ||
    fail "the control marker (dead-lettered before the keyring) is not on disk: the search proves nothing"
# the sealed letters are on disk uncompressed too: their headers are readable
sealed_on_disk=$(grep -rhaoF "pgscribe.value_encryption" "${segs[@]}" | wc -l)
[ "$sealed_on_disk" -eq $NPOISON ] ||
    fail "$sealed_on_disk sealed letters readable on disk, expected $NPOISON: the search proves nothing"
leaks=$(grep -rlaFf "$T_DIR/markers_us.txt" "${segs[@]}" || true)
[ -z "$leaks" ] || fail "PHI markers in the DLQ's segment files: $leaks"
# and the markers are on disk in the commands topic (same search, other topic)
cseg=()
for d in ${logdirs//,/ }; do for p in "$d/$CMDS"-*; do [ -d "$p" ] && cseg+=("$p"); done; done
[ "$(grep -rhaoFf "$T_DIR/markers.txt" "${cseg[@]}" | sort -u | wc -l)" -eq $NPOISON ] ||
    fail "not every marker is found in the commands topic's segments: the search proves nothing"

# 2. headers, read with kcat
kcat -b "$PGSCRIBE_KAFKA" -C -t "$DLQ" -e -q -f '%p %o %h\n' >"$T_DIR/headers.txt"
grep -aFf "$T_DIR/markers_us.txt" "$T_DIR/headers.txt" && fail "PHI markers in dead-letter headers"
enc=$(grep -c "pgscribe.value_encryption=v1,pgscribe.value_key_id=7" "$T_DIR/headers.txt" || true)
[ "$enc" -eq $NPOISON ] || fail "$enc dead letters marked as sealed with key 7, expected $NPOISON"
grep "CTRLMARK\|no_such" "$T_DIR/headers.txt" >/dev/null && fail "headers name the entity"
clear=$(grep -vc "pgscribe.value_encryption" "$T_DIR/headers.txt" || true)
[ "$clear" -eq 1 ] || fail "$clear dead letters in clear, expected the control letter only"
[ "$(grep -c "pgscribe.clinic=clinic-00" "$T_DIR/headers.txt")" -eq $((NPOISON / 3 * 2 + 1)) ] ||
    fail "pgscribe.clinic missing on decoded commands: $(head -n 3 "$T_DIR/headers.txt")"
grep -q "pgscribe.command_id=" "$T_DIR/headers.txt" || fail "no pgscribe.command_id header"

# 3. replay --list, 4. the worker log
"$PGSCRIBE_BIN" replay -c "$T_CONF" --list >"$T_DIR/list.jsonl" 2>"$T_DIR/list.err" ||
    fail "replay --list failed: $(cat "$T_DIR/list.err")"
[ "$(wc -l <"$T_DIR/list.jsonl")" -eq $((NPOISON + 1)) ] || fail "replay --list: $(wc -l <"$T_DIR/list.jsonl") lines"
grep -aFf "$T_DIR/markers_us.txt" "$T_DIR/list.jsonl" "$T_DIR/list.err" && fail "PHI markers in replay --list"
grep -q '"value_encryption":"v1","value_key_id":7' "$T_DIR/list.jsonl" || fail "replay --list lacks the encryption marker"
grep -aFf "$T_DIR/markers_us.txt" "$T_DIR/worker-a.log" && fail "PHI markers in the worker log"
grep -q "unknown name, " "$T_DIR/list.jsonl" || fail "no unknown-column reason by digest in the list"

# 5. replay without the keyring: 30 undecryptable, exit 1, only the control replayed
sed '/^\[crypto\]$/,$d' "$T_CONF" >"$T_DIR/nokey.conf"
rc=0
"$PGSCRIBE_BIN" replay -c "$T_DIR/nokey.conf" >"$T_DIR/replay-nokey.out" 2>"$T_DIR/replay-nokey.err" || rc=$?
[ $rc -eq 1 ] || fail "replay without the keyring exited $rc, expected 1: $(cat "$T_DIR/replay-nokey.out")"
grep -q "replayed 1 of $((NPOISON + 1)) .* $NPOISON undecryptable" "$T_DIR/replay-nokey.out" ||
    fail "replay without the keyring: $(cat "$T_DIR/replay-nokey.out")"
[ "$(grep -c "cannot decrypt: no keyring" "$T_DIR/replay-nokey.err")" -eq $NPOISON ] ||
    fail "undecryptable letters not each reported: $(head -n 3 "$T_DIR/replay-nokey.err")"
[ "$(pgs_topic_count "$CMDS")" -eq $((NPOISON + 2)) ] || fail "replay without a key produced sealed letters"

# 6. with the keyring: every letter decrypted and re-produced once, byte for byte
out=$("$PGSCRIBE_BIN" replay -c "$T_CONF" 2>"$T_DIR/replay.err") ||
    fail "replay with the keyring failed: $out $(cat "$T_DIR/replay.err")"
echo "$out" | grep -q "replayed $((NPOISON + 1)) of $((NPOISON + 1)) .* 0 undecryptable" || fail "replay: $out"
kcat -b "$PGSCRIBE_KAFKA" -C -t "$CMDS" -e -q -f '%S %s' >"$T_DIR/commands.bin"
python3 - "$T_DIR/commands.bin" "$T_DIR/markers.txt" <<'PY' || fail "replayed values differ from the originals"
import collections, sys
data = open(sys.argv[1], "rb").read()
markers = open(sys.argv[2]).read().split()
got, i = collections.Counter(), 0
while i < len(data):
    sp = data.index(b" ", i)
    n = int(data[i:sp])
    got[data[sp + 1:sp + 1 + n]] += 1
    i = sp + 1 + n
def copies(marker):
    return [c for v, c in got.items() if marker.encode() in v]
problems = [m for m in markers if copies(m) != [2]]
ctrl = copies("CTRLMARK-0001")
total = sum(got.values())
if problems or ctrl != [3] or total != 2 * len(markers) + 3:
    print("poison values not exactly twice: %d (%s); control %s; %d messages" % (
        len(problems), problems[:2], ctrl, total))
    sys.exit(1)
PY

# 7. a sealed value under headers naming another source offset: one copy with
# the letter's own headers decrypts, one claiming another offset does not
line=$(grep -m1 "pgscribe.value_encryption=v1" "$T_DIR/headers.txt")
P=${line%% *}
rest=${line#* }
O=${rest%% *}
kcat -b "$PGSCRIBE_KAFKA" -C -t "$DLQ" -p "$P" -o "$O" -c 1 -e -q -f '%s' >"$T_DIR/env.bin"
[ "$(stat -c %s "$T_DIR/env.bin")" -gt 33 ] || fail "could not read the sealed value back"
hdr() { echo "$line" | grep -o "$1=[^,]*" | head -n 1; }
src_off=$(hdr pgscribe.source.offset | cut -d= -f2)
[ -n "$src_off" ] || fail "no source offset header: $line"
MOVED=$T_RUN.moved
sed "s/^commands_dlq = .*/commands_dlq = $MOVED/" "$T_CONF" >"$T_DIR/moved.conf"
"$PGSCRIBE_BIN" topics -c "$T_DIR/moved.conf" -p 1 >/dev/null
common=()
for h in pgscribe.clinic pgscribe.source.topic pgscribe.source.partition pgscribe.value_encryption \
    pgscribe.value_key_id content-type; do
    v=$(hdr "$h")
    [ -n "$v" ] && common+=(-H "$v")
done
kcat -b "$PGSCRIBE_KAFKA" -P -t "$MOVED" -p 0 "${common[@]}" -H "pgscribe.source.offset=$src_off" \
    "$T_DIR/env.bin" || fail "kcat produce failed"
kcat -b "$PGSCRIBE_KAFKA" -P -t "$MOVED" -p 0 "${common[@]}" \
    -H "pgscribe.source.offset=$((src_off + 1000))" "$T_DIR/env.bin" || fail "kcat produce failed"
rc=0
out=$("$PGSCRIBE_BIN" replay -c "$T_DIR/moved.conf" --dlq "$MOVED" 2>"$T_DIR/moved.err") || rc=$?
[ $rc -eq 1 ] || fail "replay of a moved envelope exited $rc, expected 1: $out $(cat "$T_DIR/moved.err")"
echo "$out" | grep -q "replayed 1 of 2 .* 1 undecryptable" || fail "moved: $out"
grep -q "offset 1: cannot decrypt: authentication failed" "$T_DIR/moved.err" ||
    fail "the moved envelope was not refused for authentication: $(cat "$T_DIR/moved.err")"

echo "ok: $NPOISON sealed dead letters (keyring loaded by SIGHUP), no PHI marker in the DLQ's" \
    "segments, headers, replay --list or the worker log; control letter in clear; replay without" \
    "the key: $NPOISON undecryptable, exit 1; with it: $((NPOISON + 1)) re-produced byte for byte;" \
    "moved envelope: authentication failed; $((SECONDS - t_start)) s"
