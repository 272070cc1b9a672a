#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/README.md) and runs each for N seconds.
#
#   fuzz/run.sh [SECONDS] [CORPUS_DIR] [TARGET...]
#
# A dictionary fuzz/<target>.dict is used when present.
# SECONDS defaults to 60 per target. CORPUS_DIR (default build-fuzz/corpus)
# gets one folder per target; it keeps growing across runs, and the seeds in
# fuzz/seeds/<target>/ are read at every start but never written. Crashes
# land in CORPUS_DIR/<target>-artifacts/. Extra libFuzzer flags can be
# passed in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-jobs=2 -workers=2").
# Exits non-zero when a target fails.
set -euo pipefail

cd "$(dirname "$0")/.."
secs=${1:-60}
corpus=${2:-build-fuzz/corpus}
shift $(($# > 2 ? 2 : $#))
build=${FUZZ_BUILD:-build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C "$build"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for exe in "$build"/fuzz/fuzz_*; do
		[ -f "$exe" ] && [ -x "$exe" ] && targets+=("$(basename "$exe")")
	done
fi

status=0
for t in "${targets[@]}"; do
	mkdir -p "$corpus/$t" "$corpus/$t-artifacts"
	seeds=()
	[ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
	dict=()
	[ -f "fuzz/$t.dict" ] && dict=("-dict=fuzz/$t.dict")
	echo "==== $t: ${secs}s, corpus $corpus/$t"
	# shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
	if ! "$build/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$corpus/$t-artifacts/" "${dict[@]}" ${FUZZ_FLAGS:-} \
		"$corpus/$t" "${seeds[@]}"; then
		echo "==== $t: FAILED (see $corpus/$t-artifacts/)"
		status=1
	fi
done
exit $status
