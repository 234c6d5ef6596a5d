#!/bin/sh
# A short run of every fuzz target given, from its seed corpus, JOBS at a
# time (default: the number of CPUs). Each target's output goes to
# build/fuzz/<name>.log; the first target that fails prints its log's tail
# and the whole run fails.
#
#   scripts/fuzz-smoke.sh SECONDS TARGET...
set -eu
secs=$1
shift
jobs=${FUZZ_JOBS:-$(nproc)}

one() {
	f=$1
	n=$(basename "$f")
	mkdir -p "build/fuzz/corpus/$n"
	seeds=""
	[ -d "fuzz/corpus/$n" ] && seeds="fuzz/corpus/$n"
	# shellcheck disable=SC2086
	if "$f" -max_total_time="$secs" -max_len=4096 -print_final_stats=0 \
		"build/fuzz/corpus/$n" $seeds 2>"build/fuzz/$n.log"; then
		echo "== $n (${secs}s) ok"
	else
		echo "== $n FAILED" >&2
		tail -50 "build/fuzz/$n.log" >&2
		exit 1
	fi
}

if [ "${1:-}" = "--one" ]; then
	one "$2"
	exit
fi
printf '%s\n' "$@" | xargs -P "$jobs" -n 1 "$0" "$secs" --one
