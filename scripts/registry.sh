#!/usr/bin/env bash
# A real Schema Registry (Apicurio Registry, in-memory) for local runs and the
# integration tests; the work is done by tests/registry/registry.sh, beside
# its pom. usage: scripts/registry.sh build|start|stop|status|url
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/registry/registry.sh" "$@"
