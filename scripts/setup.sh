#!/usr/bin/env bash
# Installs what building and testing ingot needs, from Debian 12's packages.
# Run as root (or with sudo available). Idempotent: when everything is
# already installed it only asks dpkg and returns within a second.
set -euo pipefail

packages=(
	meson ninja-build pkg-config make gcc libc6-dev clang python3
	libck-dev liburcu-dev libzstd-dev libmsgpack-dev libcmocka-dev
	gdb # the store tests' watchdog prints stacks with it on a hang
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

echo "setup: installing ${missing[*]}"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
	as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q "${missing[@]}"
