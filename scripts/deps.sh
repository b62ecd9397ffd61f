#!/usr/bin/env bash
# Installs the Debian packages pgscribe needs to build, test and run its local stack.
# Idempotent: asks dpkg first and runs apt-get only when something is missing.
set -euo pipefail

pkgs=(build-essential cmake pkg-config librdkafka-dev libpq-dev libavro-dev
      libjansson-dev libssl-dev libcmocka-dev libinih-dev libmicrohttpd-dev libsystemd-dev
      libcurl4-openssl-dev zlib1g-dev postgresql-15 clang libclang-rt-14-dev clang-format kcat python3
      maven procps python3-confluent-kafka python3-avro python3-psycopg2 prometheus tmux
      systemd python3-yaml python3-protobuf protobuf-compiler pgbackrest valgrind)
# A JRE only if no java is there: the machine's own JDK (17) is preferred.
command -v java >/dev/null 2>&1 || pkgs+=(default-jre-headless)

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ "$status" == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    echo "deps: all ${#pkgs[@]} packages present"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing ${missing[*]} and not root: install them with apt-get" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "deps: apt-get failed installing ${missing[*]}" >&2
    exit 1
fi
echo "deps: installed ${missing[*]}"
