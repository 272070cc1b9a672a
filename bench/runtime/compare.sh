#!/usr/bin/env bash
# compare.sh: builds the Savina programs of bench/runtime for ingot, CAF and
# Erlang, runs each benchmark on each runtime with the same parameters, and
# prints one table: msgs/s per runtime, the ingot/peer ratios and the goal
# with PASS/MISS. See README.md for the parameters and what is counted.
#
# Usage: bench/runtime/compare.sh [benchmark...]
#   benchmarks: pingpong counting threadring fjthrput fjcreate chameneos big idle
# Environment:
#   BUILD=dir      ingot build dir (default <repo>/build-bench); the peers are
#                  built under $BUILD/peers
#   REPS=n         reps per benchmark, the median is reported (default 5)
#   IDLE_N=n       actors spawned by the idle/spawn benchmark (default 1000000)
#   RUNTIMES="ingot caf erlang"  which runtimes to run
#   TIMEOUT=s      per program run (default 180)
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
REPS=${REPS:-5}
IDLE_N=${IDLE_N:-1000000}
RUNTIMES=${RUNTIMES:-"ingot caf erlang"}
TIMEOUT=${TIMEOUT:-180}
JOBS=$(nproc 2>/dev/null || echo 2)

# Parameters, the same for every runtime (Savina's, scaled; README.md).
declare -A PARAMS=(
	[pingpong]="500000"          # N round trips
	[counting]="2000000"         # N increments
	[threadring]="100 1000000"   # A actors, H hops
	[fjthrput]="60 10000"        # A workers, N messages each
	[fjcreate]="100000"          # N actors, one message each
	[chameneos]="100 200000"     # C chameneos, N meetings
	[big]="120 5000"             # W workers, N pings each
)
ALL="pingpong counting threadring fjthrput fjcreate chameneos big idle"
BENCHES=${*:-$ALL}

log() { printf '%s\n' "$*" >&2; }

# ---- packages ------------------------------------------------------------
PKGS="libcaf-dev erlang-base g++ meson ninja-build pkg-config libck-dev liburcu-dev libzstd-dev libmsgpack-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ]; then
		log "installing:$missing"
		apt-get install -y $missing >&2 || { apt-get update >&2 && apt-get install -y $missing >&2; } ||
			log "apt-get failed; going on with what is there"
	else
		log "missing packages (run as root to install):$missing"
	fi
fi

mkdir -p "$BUILD/peers/caf" "$BUILD/peers/erlang"
LOG=$BUILD/compare.log
: >"$LOG"

# ---- build -----------------------------------------------------------------
have_ingot=0
WERROR_NOTE=""
if [[ " $RUNTIMES " == *" ingot "* ]]; then
	log "building ingot ($BUILD)"
	# Try the strict build first on every run (a fallback below may have
	# turned -Werror off in an earlier one).
	[ -f "$BUILD/build.ninja" ] && meson configure "$BUILD" -Dwerror=true >>"$LOG" 2>&1
	if { [ -f "$BUILD/build.ninja" ] ||
		meson setup "$BUILD" "$ROOT" -Dbench=true -Dtests=false --buildtype=release; } >>"$LOG" 2>&1 &&
		ninja -C "$BUILD" >>"$LOG" 2>&1; then
		have_ingot=1
	elif [ -f "$BUILD/build.ninja" ] && grep -q "Werror=" "$LOG" &&
		meson configure "$BUILD" -Dwerror=false >>"$LOG" 2>&1 && ninja -C "$BUILD" >>"$LOG" 2>&1; then
		# Warnings do not change the code; say so loudly and go on.
		log "WARNING: ingot builds in release only with -Dwerror=false (warnings in $LOG)"
		WERROR_NOTE="ingot was built with -Dwerror=false: its release build has warnings (see the log)"
		have_ingot=1
	else
		log "ingot build failed (see $LOG); its column will be empty"
	fi
fi

have_caf=0
if [[ " $RUNTIMES " == *" caf "* ]]; then
	log "building CAF programs"
	stale=""
	for src in "$HERE"/caf/*.cpp; do
		bin=$BUILD/peers/caf/$(basename "$src" .cpp)
		[ "$bin" -nt "$src" ] || stale="$stale $src"
	done
	if [ -z "$stale" ] || printf '%s\n' $stale | xargs -P "$JOBS" -I{} sh -c \
		'g++ -O2 -std=c++17 -o "$1/$(basename "$2" .cpp)" "$2" -lcaf_core -pthread' _ "$BUILD/peers/caf" {} \
		>>"$LOG" 2>&1; then
		have_caf=1
	else
		log "CAF build failed (see $LOG)"
	fi
fi

have_erlang=0
if [[ " $RUNTIMES " == *" erlang "* ]]; then
	log "building Erlang programs"
	if erlc -o "$BUILD/peers/erlang" "$HERE"/erlang/*.erl >>"$LOG" 2>&1; then
		have_erlang=1
	else
		log "Erlang build failed (see $LOG)"
	fi
fi

# ---- run -------------------------------------------------------------------
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
declare -A RES # RES[runtime:metric] = value

# run RUNTIME BENCH: runs one program, records its RESULT lines.
run() {
	local rt=$1 b=$2 args out
	if [ "$b" = idle ]; then args="$IDLE_N"; else args="$REPS ${PARAMS[$b]}"; fi
	case $rt in
	ingot) cmd=("$BUILD/bench/runtime/savina-$b" $args) ;;
	caf) cmd=("$BUILD/peers/caf/$b" $args) ;;
	erlang) cmd=(erl -noshell +P 4000000 -pa "$BUILD/peers/erlang" -run "$b" main $args) ;;
	esac
	log "  $rt $b $args"
	echo "== $rt $b $args" >>"$LOG"
	out=$(cd "$BUILD" && timeout "$TIMEOUT" "${cmd[@]}" 2>>"$LOG")
	local rc=$?
	printf '%s\n' "$out" >>"$LOG"
	[ $rc = 0 ] || log "  $rt $b failed (exit $rc, see $LOG)"
	while read -r tag name value _; do
		[ "$tag" = RESULT ] && RES[$rt:$name]=$value
	done <<<"$out"
}

for b in $BENCHES; do
	if [ "$b" != idle ] && [ -z "${PARAMS[$b]:-}" ]; then
		log "unknown benchmark: $b"
		exit 2
	fi
	[ $have_ingot = 1 ] && run ingot "$b"
	[ $have_caf = 1 ] && run caf "$b"
	[ $have_erlang = 1 ] && run erlang "$b"
done

# ---- table -----------------------------------------------------------------
# row METRIC LABEL KIND: KIND is msgs5 (>= 5x CAF, >= 3x Erlang), msgs2
# (>= 2x CAF, >= 1x Erlang), bytes (<= 192), spawns (>= 4,000,000/s).
row() {
	local m=$1 label=$2 kind=$3
	awk -v label="$label" -v kind="$kind" -v i="${RES[ingot:$m]:-}" \
		-v c="${RES[caf:$m]:-}" -v e="${RES[erlang:$m]:-}" '
	function num(x) { return x == "" ? "n/a" : sprintf("%.0f", x) }
	function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "n/a" : sprintf("%.2f", a / b) }
	BEGIN {
		rc = ratio(i, c); re = ratio(i, e)
		if (kind == "msgs5") { goal = ">=5x CAF, >=3x Erl"; ok = rc != "n/a" && re != "n/a" && i / c >= 5 && i / e >= 3 }
		if (kind == "msgs2") { goal = ">=2x CAF, >=1x Erl"; ok = rc != "n/a" && re != "n/a" && i / c >= 2 && i / e >= 1 }
		if (kind == "bytes") { goal = "<=192 B/actor"; ok = i != "" && i <= 192 }
		if (kind == "spawns") { goal = ">=4,000,000/s"; ok = i != "" && i >= 4000000 }
		verdict = ok ? "PASS" : "MISS"
		if (i == "") verdict = "n/a"
		printf "%-22s %13s %13s %13s %9s %9s  %-20s %s\n", label, num(i), num(c), num(e), rc, re, goal, verdict
	}'
}

echo
echo "ingot vs CAF vs Erlang on $(nproc) cores, median of $REPS reps (idle: one run of $IDLE_N actors)"
printf "%-22s %13s %13s %13s %9s %9s  %-20s %s\n" benchmark ingot CAF Erlang ingot/CAF ingot/Erl goal result
for b in $BENCHES; do
	case $b in
	pingpong | counting) row "$b" "$b (msgs/s)" msgs5 ;;
	idle)
		row idle_bytes "idle (bytes/actor)" bytes
		row spawn "spawn (spawns/s)" spawns
		;;
	*) row "$b" "$b (msgs/s)" msgs2 ;;
	esac
done
echo "load average: $LOAD0 at start, $(cut -d' ' -f1 /proc/loadavg) at end (above $(nproc), the figures are noisy)"
[ -n "$WERROR_NOTE" ] && echo "$WERROR_NOTE"
echo "(raw output: $LOG)"
