# CPU accounting of the benchmark scripts (bench_e2e.sh, peer_debezium.sh),
# sourced after PGS_STACK_DIR is set and the stack is up. All figures are in
# clock ticks (HZ per second).

# cpu_ticks PID...: utime+stime (+cutime+cstime with --children) in clock
# ticks; the fields after the ")" of comm start at field 3 of /proc/PID/stat.
cpu_ticks() {
    local with_children=0 total=0 pid stat
    if [ "$1" = --children ]; then with_children=1; shift; fi
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        read -r -a f <<<"${stat##*) }"
        total=$((total + f[11] + f[12]))
        [ $with_children = 1 ] && total=$((total + f[13] + f[14]))
    done
    echo "$total"
}

# The postmaster's cutime/cstime hold the CPU of backends that already
# exited (psql polls, the migrations), so the cluster total loses nothing.
PM_PID=$(head -n 1 "$PGS_STACK_DIR/pg/data/postmaster.pid")
pg_children() { ps -o pid= --ppid "$PM_PID" | tr -d ' '; }
pg_cpu_ticks() {
    # shellcheck disable=SC2046
    echo $(($(cpu_ticks --children "$PM_PID") + $(cpu_ticks $(pg_children))))
}
# pg_backend_ticks ROLE DB: the CPU of the backends serving ROLE on DB,
# apart from anyone else's.
pg_backend_ticks() {
    local pids=() pid
    for pid in $(pg_children); do
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "postgres: $1 $2 " && pids+=("$pid")
    done
    cpu_ticks "${pids[@]:-}"
}
KAFKA_PID=$(cat "$PGS_STACK_DIR/kafka/kafka.pid" 2>/dev/null || true)
kafka_ticks() { if [ -n "$KAFKA_PID" ]; then cpu_ticks "$KAFKA_PID"; else echo 0; fi; }
HZ=$(getconf CLK_TCK)
