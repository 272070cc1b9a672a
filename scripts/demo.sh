#!/usr/bin/env bash
# Installs what is missing, makes a release build and runs the demos: a
# small supervised actor pipeline (runtime/demo.c), then the embedded store
# surviving kill -9 (actors/store_demo.c).
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/setup.sh

# quietly CMD...: runs CMD, showing its output only if it fails.
quietly() {
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out"
		echo "demo.sh: failed: $*" >&2
		exit 1
	fi
}

# A user's build: warnings stay warnings here (a newer compiler's new warning
# must not stop the demo); scripts/test.sh builds with -Werror.
dir=build-release
echo "building ingot-demo (release) in $dir ..."
if [ -f "$dir/meson-private/coredata.dat" ]; then
	quietly meson setup --reconfigure "$dir" --buildtype=release -Dtests=false -Dwerror=false
else
	rm -rf "$dir"
	quietly meson setup "$dir" --buildtype=release -Dtests=false -Dwerror=false
fi
quietly ninja -C "$dir" runtime/ingot-demo actors/ingot-store-demo

echo
"$dir/runtime/ingot-demo"
echo
exec "$dir/actors/ingot-store-demo"
