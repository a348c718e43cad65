#!/bin/sh
# The server under callgrind, for russet-bench --server-bin docs/bench/callgrind-server.sh:
# instruction counts are repeatable on a busy machine, where CPU seconds are not.
#
# The harness ends its server with SIGKILL, which would lose the profile, so the server runs as
# a child of this shell and outlives it. After the run, stop it with SIGTERM (it shuts down and
# callgrind writes the profile):
#   kill -TERM $(pgrep -f 'valgrind.bin --tool=callgrind')
# Two runs that differ only in --rounds, subtracted, give the cost of the extra round trips
# without the start-up (callgrind_annotate, see docs/benchmarks.md).
#
# RUSSET_BIN: the server binary (default target/release/russet); CALLGRIND_OUT: where the
# profile goes (default /tmp/callgrind.russet.<pid>).
BIN=${RUSSET_BIN:-target/release/russet}
OUT=${CALLGRIND_OUT:-/tmp/callgrind.russet.%p}
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" "$@" &
wait
