#!/bin/sh
# The example on 1, 2 and 3 processes: each prints the same line but for
# the process count (same final loss, same weights).
set -u
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
first=
for k in 1 2 3; do
  out=$(timeout 120 mpirun --oversubscribe -np "$k" "$1" "$2") || { echo "failed on $k processes"; exit 1; }
  echo "$out"
  line=$(echo "$out" | sed -n 's/^mpi_host: [0-9]* processes, //p')
  [ -n "$line" ] || { echo "no result line on $k processes"; exit 1; }
  [ -z "$first" ] && first=$line
  [ "$line" = "$first" ] || { echo "$k processes differ from 1: $line vs $first"; exit 1; }
done
echo "mpi_host: the same loss and weights on 1-3 processes"
