#!/usr/bin/env bash
# compare.sh: builds bench-store (ingot's store against RocksDB, one binary)
# in a release build directory, runs it once in a fresh data directory, and
# then, for reference, RocksDB's own db_bench on the same load. The binary
# prints the table (each measure, both engines, the ratio, PASS/FAIL); this
# script adds the machine, the commit and db_bench's figures.
#
# Usage: bench/store/compare.sh [bench-store options...]
#   (e.g. --keys 200000 --reads 100000 --sync-seconds 2 for a quick run;
#    bench-store --help lists them)
# Environment:
#   BUILD=dir     build directory (default <repo>/build-bench-store)
#   KEYS=n        keys loaded (default 10000000)
#   READS=n       cold random point reads (default 1000000)
#   DATA=dir      parent of the data directory (default $TMPDIR or /tmp)
#   DBBENCH=0     skip db_bench
#   TIMEOUT=s     limit for the bench-store run (default 1800)
# Exit status: bench-store's (0 unless an engine failed or the data differed).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench-store}
KEYS=${KEYS:-10000000}
READS=${READS:-1000000}
DATA=${DATA:-${TMPDIR:-/tmp}}
DBBENCH=${DBBENCH:-1}
TIMEOUT=${TIMEOUT:-1800}

log() { printf '%s\n' "$*" >&2; }

# ---- packages ------------------------------------------------------------
PKGS="librocksdb-dev rocksdb-tools meson ninja-build pkg-config gcc libc6-dev libck-dev liburcu-dev libzstd-dev libmsgpack-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ]; then
		log "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q $missing >&2 || { apt-get update -q >&2 && apt-get install -y -q $missing >&2; } ||
			log "apt-get failed; going on with what is there"
	else
		log "missing packages (run as root to install):$missing"
	fi
fi

# ---- build -----------------------------------------------------------------
mkdir -p "$BUILD"
LOG=$BUILD/bench-store.log
: >"$LOG"
log "building bench-store ($BUILD)"
if ! { [ -f "$BUILD/build.ninja" ] ||
	meson setup "$BUILD" "$ROOT" -Dbench=true -Dtests=false -Dbuildtype=release -Dwerror=false; } >>"$LOG" 2>&1; then
	log "meson setup failed (see $LOG)"
	exit 1
fi
if ! ninja -C "$BUILD" bench/store/bench-store >>"$LOG" 2>&1; then
	log "build failed (see $LOG); is librocksdb-dev installed?"
	tail -20 "$LOG" >&2
	exit 1
fi
BIN=$BUILD/bench/store/bench-store

# --keys/--reads given as arguments win over KEYS/READS (db_bench gets them too).
prev=""
for a in "$@"; do
	case $prev in
	--keys) KEYS=$a ;;
	--reads) READS=$a ;;
	esac
	prev=$a
done

# ---- the machine -------------------------------------------------------------
DIR=$(mktemp -d "$DATA/bench-store.XXXXXX") || exit 1
trap 'rm -rf "$DIR"' EXIT
echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- storage actors 2>/dev/null || echo ' (storage/ or actors/ modified)'), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(findmnt -n -o FSTYPE -T "$DIR") on $(findmnt -n -o SOURCE -T "$DIR"), $(uname -sr)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: $BIN --dir $DIR/run --keys $KEYS --reads $READS $*"
echo

# ---- ingot and RocksDB --------------------------------------------------------
timeout "$TIMEOUT" "$BIN" --dir "$DIR/run" --keys "$KEYS" --reads "$READS" "$@" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] && echo "bench-store: timed out after $TIMEOUT s"
rm -rf "$DIR/run"

# ---- db_bench, for reference ----------------------------------------------------
if [ "$DBBENCH" != 0 ] && command -v db_bench >/dev/null; then
	echo
	echo "db_bench (rocksdb-tools $(dpkg-query -W -f='${Version}' rocksdb-tools 2>/dev/null)), same load, for reference:"
	DB_ARGS=(--db="$DIR/db_bench" --benchmarks=fillseq,fillrandom,readrandom
		--num="$KEYS" --reads="$READS" --key_size=16 --value_size=100
		--compression_type=zstd --compression_level=3 --compression_ratio=0.5
		--block_size=16384 --bloom_bits=10 --cache_size=0
		--write_buffer_size=67108864 --max_write_buffer_number=2
		--max_background_jobs=2 --sync=1 --batch_size=1000 --threads=1)
	echo "  db_bench ${DB_ARGS[*]}"
	timeout "$TIMEOUT" db_bench "${DB_ARGS[@]}" >>"$LOG" 2>&1 || echo "  db_bench failed (exit $?, see $LOG)"
	# db_bench prints ops/s per operation: with batches, one op is one key.
	grep -E '^(fillseq|fillrandom|readrandom) ' "$LOG" | sed 's/^/  /'
	echo "  (readrandom follows fillrandom in the same process: warm; fill ops are keys)"
	rm -rf "$DIR/db_bench"
fi
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); raw output: $LOG"
exit "$rc"
