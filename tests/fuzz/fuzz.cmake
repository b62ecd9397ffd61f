# Fuzzing: tests/fuzz/run_fuzz.sh builds fuzz_decode.c with clang's libFuzzer
# (ASan + UBSan) from the same sources as the core library, since the CMake
# targets are gcc-built, and runs it over tests/fuzz/corpus for a bounded
# time (PGS_FUZZ_SECONDS, default 60). The one target covers WriteCommands
# and AuditEvents, JSON and Avro, chosen by each input's first byte, so the
# 60 s are shared by all four without a second build. It needs the generated schema file,
# so it depends on the core library having been built.
add_test(NAME fuzz.decode
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzz.sh ${PGS_EMBED_C})
set_tests_properties(fuzz.decode PROPERTIES LABELS "unit;fuzz" TIMEOUT 300)
