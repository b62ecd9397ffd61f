#!/usr/bin/env bash
# Real Apache Kafka broker (KRaft, single node) of the local stack; the work is
# done by deploy/kafka/kafka.sh, beside its pom, log4j2 config and template.
# usage: scripts/kafka.sh start|stop|restart|status|topics|check
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/deploy/kafka/kafka.sh" "$@"
