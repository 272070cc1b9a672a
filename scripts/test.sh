#!/usr/bin/env bash
# The whole check, as CI runs it (.ci/run): install what is missing, build and
# test under AddressSanitizer+UndefinedBehaviorSanitizer (every suite) and
# ThreadSanitizer (suite runtime), then install a release build into a
# temporary prefix and build examples/service against it, outside the tree.
#
# Ends with exactly one line "N passed, N failed" (tests counted from meson's
# junit logs, plus one for the embedding check) and exits non-zero if anything
# failed, a build included.
set -uo pipefail

cd "$(dirname "$0")/.."
root=$PWD

# Failures that are not test cases (a setup or build that broke, a missing
# log) and the embedding check are counted here.
extra_passed=0
extra_failed=0
test_dirs=()

finish() {
	local counts p f
	counts=$(python3 "$root/scripts/count_results.py" "${test_dirs[@]}" 2>/dev/null) || counts="0 1"
	read -r p f <<<"$counts"
	p=$((p + extra_passed))
	f=$((f + extra_failed))
	echo
	echo "$p passed, $f failed"
	if [ "$f" -ne 0 ] || [ "$p" -eq 0 ]; then
		exit 1
	fi
	exit 0
}

step() { echo; echo "==== $*"; }

step "setup"
if ! bash scripts/setup.sh; then
	echo "test.sh: scripts/setup.sh failed"
	extra_failed=$((extra_failed + 1))
	finish
fi

# configure DIR OPTIONS...: meson setup, or reconfigure an existing dir.
configure() {
	local dir=$1
	shift
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" "$@"
	else
		rm -rf "$dir"
		meson setup "$dir" "$@"
	fi
}

# build_and_test DIR "MESON TEST ARGS" MESON SETUP OPTIONS...
build_and_test() {
	local dir=$1 test_args=$2
	shift 2
	step "$dir: configure and build"
	rm -f "$dir/meson-logs/testlog.junit.xml" "$dir/meson-logs/testlog.json"
	if ! configure "$dir" "$@" || ! ninja -C "$dir"; then
		echo "test.sh: $dir: build failed"
		extra_failed=$((extra_failed + 1))
		return
	fi
	step "$dir: meson test $test_args"
	# shellcheck disable=SC2086
	meson test -C "$dir" --print-errorlogs --num-processes 2 $test_args
	local rc=$?
	test_dirs+=("$dir")
	if [ ! -f "$dir/meson-logs/testlog.junit.xml" ]; then
		# No log: either no test is defined yet, or meson itself failed.
		if [ "$rc" -ne 0 ]; then
			echo "test.sh: $dir: meson test failed (exit $rc) without a log"
			extra_failed=$((extra_failed + 1))
		fi
	fi
}

build_and_test build-asan "" \
	-Db_sanitize=address,undefined -Db_lundef=false
build_and_test build-tsan "--suite runtime" \
	-Db_sanitize=thread -Db_lundef=false -Dtsan_only_runtime=true

# Embedding: a release build installed into a temporary prefix, and the
# example service built against it from a copy outside the tree.
step "embedding: install a release build and build examples/service outside the tree"
embed_tmp=$(mktemp -d /tmp/ingot-embed.XXXXXX)
embed() {
	local prefix=$embed_tmp/prefix pc
	configure build-release-embed --buildtype=release -Dtests=false \
		--prefix="$prefix" || return 1
	ninja -C build-release-embed || return 1
	meson install -C build-release-embed --quiet || return 1
	pc=$(find "$prefix" -name ingot-runtime.pc -print -quit)
	if [ -z "$pc" ]; then
		echo "test.sh: ingot-runtime.pc was not installed"
		return 1
	fi
	cp -r examples/service "$embed_tmp/service" || return 1
	(
		cd "$embed_tmp/service" &&
			export PKG_CONFIG_PATH="$(dirname "$pc")" &&
			echo "pkg-config --cflags --libs ingot-runtime: $(pkg-config --cflags --libs ingot-runtime)" &&
			make &&
			timeout 60 ./service
	)
}
if embed; then
	echo "embedding: ok"
	extra_passed=$((extra_passed + 1))
else
	echo "embedding: FAILED"
	extra_failed=$((extra_failed + 1))
fi
rm -rf "$embed_tmp"

finish
