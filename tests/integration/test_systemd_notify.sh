#!/usr/bin/env bash
# systemd notifications of a running worker, against real Kafka and
# PostgreSQL: a listener on an AF_UNIX datagram socket stands in for systemd
# (NOTIFY_SOCKET, WATCHDOG_USEC=2000000). It sees READY=1 only once the worker
# has its assignment, WATCHDOG=1 about every second (half the interval),
# RELOADING=1 then READY=1 around a SIGHUP, and STOPPING=1 on SIGTERM.
. "$(dirname "$0")/lib.sh"
T_PARTITIONS=4
pgs_test_init systemd_notify
SOCK=$T_DIR/notify.sock
MSGS=$T_DIR/notify.txt
python3 - "$SOCK" "$MSGS" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        data = s.recv(4096).decode()
        for field in data.split("\n"):
            if field:
                out.write("%.3f %s\n" % (time.monotonic(), field))
PY
L_PID=$!
T_PIDS+=("$L_PID")
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || fail "listener socket not created"

NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=2000000 pgs_worker_launch a
A=$W_PID
LOG=$T_DIR/worker-a.log
deadline=$((SECONDS + 60))
until grep -q ' READY=1$' "$MSGS" 2>/dev/null; do
    kill -0 "$A" 2>/dev/null || fail "worker exited: $(tail -n 5 "$LOG")"
    [ $SECONDS -lt $deadline ] || fail "no READY=1 within 60 s: $(cat "$MSGS")"
    sleep 0.1
done
grep -q "assigned [0-9]* partition" "$LOG" || fail "READY=1 came before the assignment"
grep -q ' STATUS=applying' "$MSGS" || fail "no STATUS with READY: $(cat "$MSGS")"

# watchdog: half of 2 s
sleep 4.5
python3 - "$MSGS" <<'PY' || fail "watchdog pings not about every second: $(grep WATCHDOG "$MSGS")"
import sys
t = [float(l.split()[0]) for l in open(sys.argv[1]) if l.split()[1] == "WATCHDOG=1"]
gaps = [b - a for a, b in zip(t, t[1:])]
print("watchdog pings:", len(t), "gaps:", ["%.2f" % g for g in gaps], file=sys.stderr)
assert len(t) >= 4, t
assert all(0.8 <= g <= 1.5 for g in gaps[-4:]), gaps
PY

ready_before=$(grep -c ' READY=1$' "$MSGS")
kill -HUP "$A"
deadline=$((SECONDS + 30))
until [ "$(grep -c ' READY=1$' "$MSGS")" -gt "$ready_before" ]; do
    [ $SECONDS -lt $deadline ] || fail "no READY=1 after SIGHUP: $(tail -n 5 "$MSGS")"
    sleep 0.1
done
python3 - "$MSGS" <<'PY' || fail "RELOADING=1 does not precede the second READY=1: $(cat "$MSGS")"
import sys
f = [l.split(None, 1)[1].strip() for l in open(sys.argv[1])]
r = f.index("RELOADING=1")
assert any(x.startswith("MONOTONIC_USEC=") for x in f[r:r + 3]), f[r:r + 3]
assert "READY=1" in f[r + 1:], f
assert f.index("READY=1") < r, f
PY
grep -q "SIGHUP: catalog reloaded" "$LOG" || fail "READY=1 before the catalog reload ended"

pgs_worker_stop "$A"
pgs_forget_pid "$A"
sleep 0.3
grep -q ' STOPPING=1$' "$MSGS" || fail "no STOPPING=1 on SIGTERM: $(tail -n 5 "$MSGS")"
echo "systemd notify: READY after assignment, watchdog at 1 s, RELOADING/READY on SIGHUP, STOPPING"
