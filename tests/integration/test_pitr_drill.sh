#!/usr/bin/env bash
# Restore drill: scripts/dr-drill.sh (pgBackRest PITR to the middle of a
# 30 000-command load; workers rewind by themselves). See that script.
exec "$(dirname "$0")/../../scripts/dr-drill.sh"
