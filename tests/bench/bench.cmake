# `cmake --build build --target bench`: pgscribe's end-to-end benchmark on the
# local stack (started if down, never stopped). A custom target, not a ctest
# test: it prints figures and fails only when the run itself breaks.
# Override the load with -DPGS_BENCH_COUNT=... -DPGS_BENCH_CLINICS=...
set(PGS_BENCH_COUNT 100000 CACHE STRING "commands produced by the bench target")
set(PGS_BENCH_CLINICS 20 CACHE STRING "clinics the bench target's load spreads over")

add_custom_target(bench
  COMMAND ${CMAKE_COMMAND} -E env PGSCRIBE_BIN=$<TARGET_FILE:pgscribe>
          ${CMAKE_SOURCE_DIR}/tests/bench/bench_e2e.sh
          --count ${PGS_BENCH_COUNT} --clinics ${PGS_BENCH_CLINICS}
  DEPENDS pgscribe
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  USES_TERMINAL
  COMMENT "pgscribe end-to-end benchmark: ${PGS_BENCH_COUNT} commands, ${PGS_BENCH_CLINICS} clinics")

# `cmake --build build --target bench-audit`: the audit trail's benchmark
# (events chained per second by one worker, events verified per second).
set(PGS_BENCH_AUDIT_COUNT 200000 CACHE STRING "audit events produced by the bench-audit target")
add_custom_target(bench-audit
  COMMAND ${CMAKE_COMMAND} -E env PGSCRIBE_BIN=$<TARGET_FILE:pgscribe>
          ${CMAKE_SOURCE_DIR}/tests/bench/bench_audit.sh --count ${PGS_BENCH_AUDIT_COUNT}
  DEPENDS pgscribe
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  USES_TERMINAL
  COMMENT "pgscribe audit benchmark: ${PGS_BENCH_AUDIT_COUNT} events")

# `cmake --build build --target bench-encrypt`: throughput with the PHI
# columns encrypted (keys protect + a keyring) against in clear, one load.
set(PGS_BENCH_ENCRYPT_COUNT 50000 CACHE STRING "commands produced by the bench-encrypt target")
add_custom_target(bench-encrypt
  COMMAND ${CMAKE_COMMAND} -E env PGSCRIBE_BIN=$<TARGET_FILE:pgscribe>
          ${CMAKE_SOURCE_DIR}/tests/bench/bench_encrypt.sh --count ${PGS_BENCH_ENCRYPT_COUNT}
  DEPENDS pgscribe
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  USES_TERMINAL
  COMMENT "pgscribe encryption benchmark: ${PGS_BENCH_ENCRYPT_COUNT} commands, clear vs encrypted")

# `cmake --build build --target bench-peer`: the benchmark peer, the Debezium
# JDBC sink on Kafka Connect, on the same commands right after pgscribe's
# end-to-end benchmark (peer_debezium.sh --pgscribe). Off by default: nothing
# else depends on it; the first run fetches Kafka Connect and the Debezium
# plugin from Maven Central into ~/.cache/pgscribe-peer.
add_custom_target(bench-peer
  COMMAND ${CMAKE_COMMAND} -E env PGSCRIBE_BIN=$<TARGET_FILE:pgscribe>
          ${CMAKE_SOURCE_DIR}/tests/bench/peer_debezium.sh
          --count ${PGS_BENCH_COUNT} --clinics ${PGS_BENCH_CLINICS} --pgscribe
  DEPENDS pgscribe
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  USES_TERMINAL
  COMMENT "pgscribe and the Debezium JDBC sink peer: ${PGS_BENCH_COUNT} commands, ${PGS_BENCH_CLINICS} clinics")
