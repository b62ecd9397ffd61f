#!/usr/bin/env bash
# TLS end to end, on a PostgreSQL 15 cluster and a Kafka 4.1.1 broker of this
# test's own (the stack's are plain): PostgreSQL with ssl=on and a hostssl-only
# pg_hba (the worker logs in with a client certificate, `cert` auth), Kafka with
# SSL listeners (PEM keystores) beside its PLAINTEXT one. 3000 commands and 30
# poison ones through a worker on `sslmode=verify-full` and
# security.protocol=SSL: the tables equal the one-by-one reference, every
# worker session is TLSv1.3 in pg_stat_ssl, the 30 dead letters are produced
# and read back over TLS. Then five bad setups, each a prompt start failure
# with a documented exit code and a line naming the problem: PostgreSQL wrong
# CA, PostgreSQL wrong host name (exit 4), Kafka wrong CA, Kafka wrong host
# name, Kafka TLS to a plain listener (exit 5).
. "$(dirname "$0")/lib.sh"
PGBIN=/usr/lib/postgresql/15/bin
LIBS=$REPO/deploy/kafka/target/kafka-libs
[ -d "$LIBS" ] || fail "no Kafka jars in $LIBS (scripts/stack.sh up fetches them)"
NGOOD=3000
NBAD=30
FAIL_BOUND_S=20

S_DIR=$(mktemp -d /tmp/pgscribe-tls-servers.XXXXXX)
chmod 755 "$S_DIR"
S_PIDS=()
servers_down() {
    set +e
    [ -f "$S_DIR/pg/data/PG_VERSION" ] &&
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$S_DIR/pg/data" -m immediate -w stop >/dev/null 2>&1
    for pid in "${S_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    done
    rm -rf "$S_DIR"
}
tls_exit() {
    local rc=$?
    set +e
    (exit $rc)
    pgs_test_cleanup
    if [ $rc -ne 0 ]; then
        tail -n 20 "$S_DIR/pg/postgres.log" "$S_DIR/kafka/kafka.log" >&2 2>/dev/null
    fi
    servers_down
    exit $rc
}
trap tls_exit EXIT

port_taken() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
free_port() { # FROM [NOT...]
    local p=$1
    shift
    while port_taken "$p" || [[ " $* " == *" $p "* ]]; do p=$((p + 1)); done
    echo "$p"
}

CERTS=$S_DIR/certs
"$REPO/tests/integration/tls_certs.sh" "$CERTS"
chmod 644 "$CERTS"/*.pem

# --- PostgreSQL: TCP on 127.0.0.1 with TLS only; the socket for the admin
mkdir -p "$S_DIR/pg/sock"
cp "$CERTS/server.pem" "$CERTS/server.key" "$CERTS/ca.pem" "$S_DIR/pg/"
chown -R postgres: "$S_DIR/pg"
chmod 600 "$S_DIR/pg/server.key"
runuser -u postgres -- "$PGBIN/initdb" -D "$S_DIR/pg/data" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >"$S_DIR/initdb.log" 2>&1 || fail "initdb: $(tail -n 5 "$S_DIR/initdb.log")"
cat >"$S_DIR/pg/data/pg_hba.conf" <<HBA
local   all all                     trust
hostssl all pgscribe_worker 127.0.0.1/32 cert
hostssl all postgres        127.0.0.1/32 trust
HBA
PG_PORT=$(free_port 55432)
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$S_DIR/pg/data" -l "$S_DIR/pg/postgres.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories='$S_DIR/pg/sock' \
     -c ssl=on -c ssl_cert_file='$S_DIR/pg/server.pem' -c ssl_key_file='$S_DIR/pg/server.key' \
     -c ssl_ca_file='$S_DIR/pg/ca.pem' -c max_connections=200" >/dev/null ||
    fail "pg_ctl start: $(tail -n 5 "$S_DIR/pg/postgres.log")"
export PGS_PG_HOST=$S_DIR/pg/sock PGS_PG_PORT=$PG_PORT
note "postgres: 127.0.0.1:$PG_PORT (ssl=on, hostssl only)"
# a plain TCP session is refused by pg_hba
if psql -X "host=127.0.0.1 port=$PG_PORT dbname=postgres user=postgres sslmode=disable" -c 'SELECT 1' \
    >/dev/null 2>"$S_DIR/nossl.err"; then
    fail "a non-TLS TCP session was accepted"
fi
grep -q 'no pg_hba.conf entry.*no encryption' "$S_DIR/nossl.err" ||
    fail "non-TLS refusal is not pg_hba's: $(cat "$S_DIR/nossl.err")"

# --- Kafka: SSL (good cert), WRONGHOST (SAN wrong.example) and PLAINTEXT listeners
K_DIR=$S_DIR/kafka
mkdir -p "$K_DIR"
cat "$CERTS/server.key" "$CERTS/server.pem" >"$K_DIR/good.pem"
cat "$CERTS/wronghost.key" "$CERTS/wronghost.pem" >"$K_DIR/wronghost.pem"
K_SSL=$(free_port 19093)
K_WRONG=$(free_port $((K_SSL + 1)) "$K_SSL")
K_PLAIN=$(free_port $((K_WRONG + 1)) "$K_SSL" "$K_WRONG")
K_CTL=$(free_port $((K_PLAIN + 1)) "$K_SSL" "$K_WRONG" "$K_PLAIN")
sed -e "s|^listeners=.*|listeners=SSL://127.0.0.1:$K_SSL,WRONGHOST://127.0.0.1:$K_WRONG,PLAINTEXT://127.0.0.1:$K_PLAIN,CONTROLLER://127.0.0.1:$K_CTL|" \
    -e "s|^advertised.listeners=.*|advertised.listeners=SSL://127.0.0.1:$K_SSL,WRONGHOST://127.0.0.1:$K_WRONG,PLAINTEXT://127.0.0.1:$K_PLAIN|" \
    -e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,WRONGHOST:SSL|" \
    -e "s|@CONTROLLER_PORT@|$K_CTL|g" -e "s|@LOG_DIRS@|$K_DIR/data|g" \
    "$REPO/deploy/kafka/server.properties.in" >"$K_DIR/server.properties"
cat >>"$K_DIR/server.properties" <<PROPS
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$K_DIR/good.pem
listener.name.wronghost.ssl.keystore.type=PEM
listener.name.wronghost.ssl.keystore.location=$K_DIR/wronghost.pem
PROPS
grep -q "^listeners=SSL://" "$K_DIR/server.properties" || fail "server.properties: no listeners line replaced"
JAVA=(java -Xmx384m -Xms384m -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$REPO/deploy/kafka/log4j2.yaml" "-Dkafka.logs.dir=$K_DIR" -cp "$LIBS/*")
uuid=$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
"${JAVA[@]}" kafka.tools.StorageTool format -t "$uuid" -c "$K_DIR/server.properties" >"$K_DIR/format.log" 2>&1 ||
    fail "kafka storage format: $(tail -n 5 "$K_DIR/format.log")"
setsid "${JAVA[@]}" kafka.Kafka "$K_DIR/server.properties" >"$K_DIR/kafka.log" 2>&1 </dev/null &
S_PIDS+=($!)
deadline=$((SECONDS + 90))
until grep -q 'Kafka Server started' "$K_DIR/kafka.log" &&
    kcat -b "127.0.0.1:$K_PLAIN" -L -m 5 2>/dev/null | grep -q "broker 1 at"; do
    kill -0 "${S_PIDS[0]}" 2>/dev/null || fail "kafka exited: $(tail -n 20 "$K_DIR/kafka.log")"
    [ $SECONDS -lt $deadline ] || fail "kafka not ready within 90 s"
    sleep 0.5
done
note "kafka: SSL 127.0.0.1:$K_SSL, WRONGHOST :$K_WRONG, PLAINTEXT :$K_PLAIN"

# --- the worker's configuration: everything over TLS
export PGSCRIBE_KAFKA=127.0.0.1:$K_SSL
export T_EXTRA_KAFKA_CONF="security.protocol = SSL
ssl.ca.location = $CERTS/ca.pem"
export T_EXTRA_CONF=$'[pg]\nconnect_timeout_ms = 5000'
pgs_test_init tls
trap tls_exit EXIT
PG_TLS="host=127.0.0.1 port=$PG_PORT dbname=$T_DB user=pgscribe_worker sslmode=verify-full sslrootcert=$CERTS/ca.pem sslcert=$CERTS/client.pem sslkey=$CERTS/client.key"
export PGSCRIBE_PG_CONNINFO=$PG_TLS

pgs_psql "$T_DB" -c "ALTER TABLE clinic.prescriptions ADD CONSTRAINT quantity_limit CHECK (quantity <= 1000)"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --topic "$T_RUN.scratch" --count $NGOOD --clinics 20 \
    --seed 9 --emit "$T_DIR/good.jsonl" --no-progress >/dev/null
python3 "$REPO/tests/integration/poison_commands.py" "$T_DIR/good.jsonl" "$T_DIR/mixed.jsonl" \
    "$T_DIR/bad_keys.txt" --bad $NBAD --seed 3 --quantity 5000
out=$("$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/mixed.jsonl" --no-progress 2>&1)
echo "$out" | grep -q "^produced $((NGOOD + NBAD)) commands.* 0 failed" || fail "produce over TLS: $out"

t0=$SECONDS
pgs_worker_start good
pgs_wait_applied $NGOOD 120
note "applied $NGOOD over TLS in $((SECONDS - t0)) s"
# every session of the worker is TLS 1.3 and authenticated by its certificate
ssl=$(pgs_scalar "$T_DB" "SELECT count(*), count(*) FILTER (WHERE s.ssl AND s.version = 'TLSv1.3'
        AND s.client_dn = '/CN=pgscribe_worker'), string_agg(DISTINCT s.version || ' ' || s.cipher, ',')
    FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
    WHERE a.usename = 'pgscribe_worker' AND a.datname = '$T_DB'")
IFS='|' read -r n_sess n_tls13 ciphers <<<"$ssl"
[ "$n_sess" -ge 2 ] || fail "the worker holds $n_sess sessions"
[ "$n_tls13" -eq "$n_sess" ] || fail "only $n_tls13 of $n_sess worker sessions are TLSv1.3 with the client cert ($ciphers)"
note "pg_stat_ssl: $n_sess worker sessions, all $ciphers, client_dn=/CN=pgscribe_worker"
deadline=$((SECONDS + 60))
until [ "$(pgs_metrics_sum dead_lettered)" -ge $NBAD ]; do
    [ $SECONDS -lt $deadline ] || fail "fewer than $NBAD dead letters within 60 s"
    sleep 1
done
pgs_worker_stop "$W_PID"
pgs_forget_pid "$W_PID"
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")" -eq $NGOOD ] ||
    fail "applied_commands does not hold $NGOOD rows"
pgs_reference "$T_DIR/good.jsonl"
pgs_compare_tables || fail "tables differ from the one-by-one reference"
"$PGSCRIBE_BIN" replay -c "$T_CONF" --list --timeout-ms 20000 >"$T_DIR/dlq.jsonl" 2>"$T_DIR/replay.err" ||
    fail "replay --list over TLS: $(cat "$T_DIR/replay.err")"
ndlq=$(wc -l <"$T_DIR/dlq.jsonl")
[ "$ndlq" -eq $NBAD ] || fail "read back $ndlq dead letters over TLS, expected $NBAD"
grep -c '"code":"23514"' "$T_DIR/dlq.jsonl" | grep -qx $NBAD || fail "dead letters lack code 23514"

# --- bad setups: each stops the start, promptly, with a line naming the problem
GOOD_CONF=$T_CONF
bad_start() { # NAME WANT_RC PATTERN
    local name=$1 want=$2 pattern=$3 log=$T_DIR/worker-$1.log rc=0 t0 ms
    t0=$(pgs_clock_now_ms)
    timeout $((FAIL_BOUND_S + 10)) "$PGSCRIBE_BIN" run -c "$T_CONF" >"$log" 2>&1 || rc=$?
    ms=$(($(pgs_clock_now_ms) - t0))
    [ $rc -eq "$want" ] || fail "$name: exit $rc, expected $want: $(tail -n 3 "$log")"
    [ $ms -le $((FAIL_BOUND_S * 1000)) ] || fail "$name: took $ms ms to stop"
    grep "cannot start" "$log" | grep -q "$pattern" || fail "$name: no 'cannot start' line with '$pattern': $(tail -n 3 "$log")"
    note "$name: exit $rc after $ms ms: $(grep -o 'msg=.*cannot start.*' "$log" | head -n 1 | cut -c1-240)"
}
with_kafka() { # NAME KAFKA-LINES...: a config with another [kafka] tail
    local name=$1
    shift
    T_CONF=$T_DIR/pgscribe-$name.conf
    sed '/^\[kafka\]/,$d' "$GOOD_CONF" >"$T_CONF"
    printf '[kafka]\n' >>"$T_CONF"
    printf '%s\n' "$@" >>"$T_CONF"
}

T_CONF=$GOOD_CONF
export PGSCRIBE_PG_CONNINFO="${PG_TLS/sslrootcert=$CERTS\/ca.pem/sslrootcert=$CERTS/other-ca.pem}"
bad_start pg_wrong_ca 4 "certificate verify failed"
export PGSCRIBE_PG_CONNINFO="hostaddr=127.0.0.1 ${PG_TLS/host=127.0.0.1/host=wrong.example}"
bad_start pg_wrong_host 4 'does not match host name .*wrong.example'
export PGSCRIBE_PG_CONNINFO=$PG_TLS

with_kafka kafka_wrong_ca "bootstrap.servers = 127.0.0.1:$K_SSL" "security.protocol = SSL" \
    "ssl.ca.location = $CERTS/other-ca.pem"
bad_start kafka_wrong_ca 5 "certificate: unable to get local issuer certificate: .*certificate verify failed"
with_kafka kafka_wrong_host "bootstrap.servers = 127.0.0.1:$K_WRONG" "security.protocol = SSL" \
    "ssl.ca.location = $CERTS/ca.pem"
bad_start kafka_wrong_host 5 "certificate: IP address mismatch: .*certificate verify failed"
# the same listener passes without host name verification: the name is what failed
kcat -b "127.0.0.1:$K_WRONG" -X security.protocol=SSL -X "ssl.ca.location=$CERTS/ca.pem" \
    -X ssl.endpoint.identification.algorithm=none -L -m 10 >/dev/null 2>&1 ||
    fail "kafka_wrong_host: the listener fails even without host name verification"
kcat -b "127.0.0.1:$K_WRONG" -X security.protocol=SSL -X "ssl.ca.location=$CERTS/ca.pem" \
    -X ssl.endpoint.identification.algorithm=https -L -m 5 >/dev/null 2>&1 &&
    fail "kafka_wrong_host: kcat with https verification accepted the wrong name"
with_kafka kafka_plain_listener "bootstrap.servers = 127.0.0.1:$K_PLAIN" "security.protocol = SSL" \
    "ssl.ca.location = $CERTS/ca.pem"
bad_start kafka_plain_listener 5 "_SSL: .*SSL handshake failed"

echo "ok: $NGOOD commands applied over TLS and equal to the reference ($n_sess TLSv1.3 sessions," \
    "client cert), $NBAD dead letters produced and read back over TLS; 5 bad TLS setups stop the start"
