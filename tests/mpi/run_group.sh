#!/bin/sh
# Runs mpi_group under mpirun with 1 to 4 processes (oversubscribed: this
# machine may have fewer cores; as root when CI is).
set -u
bin=$1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# In the sanitizer build: Open MPI's components allocate once per process
# and are unloaded at MPI_Finalize, so LeakSanitizer cannot even name what
# they keep; leaks are checked by the single-process suites (test_group).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
status=0
for k in 1 2 3 4; do
  if ! timeout 120 mpirun --oversubscribe -np "$k" "$bin"; then
    echo "run_group.sh: mpi_group failed with $k processes" >&2
    status=1
  fi
done
exit $status
