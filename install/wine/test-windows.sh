#!/usr/bin/env bash
# make test-windows: runs every package's tests and the demo as Windows
# binaries under wine, in a Debian 13 chroot (Debian 12's wine 8 cannot run
# Go >= 1.24 Windows binaries: they need ProcessPrng).
#
#   bash install/wine/test-windows.sh [package patterns...]
#
# With no patterns: every package, then `mews-keyd.exe demo`; with patterns
# (make test-windows PKGS=./daemon/journal) only those packages.
#
# Needs root (for debootstrap, chroot and mounts; re-runs itself with sudo),
# debootstrap on the host, a Debian mirror, and about 2.5 GB under
# WINE_CACHE (default /var/cache/mews-keyd-wine). The first run builds the
# chroot (about a minute); later runs reuse it. Prints a table with one line
# per package and the demo, keeps each log under $WINE_CACHE/logs, and exits
# non-zero if anything failed. Mounts and wine processes are cleaned up on
# every exit path.
#
# Knobs: WINE_CACHE, DEBIAN_MIRROR (default: the host's), WINE_JOBS (test
# binaries run at once, default 2), WINE_TESTFLAGS (added to every test
# binary's flags, e.g. "-test.run TestX -test.count 20"), WINE_GO (the Windows Go toolchain that
# tests building programs at test time use; any Go 1.26 release does, and the
# module proxy does not serve every one as a module).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	exec sudo env "PATH=$PATH" ${WINE_CACHE:+"WINE_CACHE=$WINE_CACHE"} \
		${DEBIAN_MIRROR:+"DEBIAN_MIRROR=$DEBIAN_MIRROR"} ${WINE_JOBS:+"WINE_JOBS=$WINE_JOBS"} \
		${WINE_GO:+"WINE_GO=$WINE_GO"} ${WINE_TESTFLAGS:+"WINE_TESTFLAGS=$WINE_TESTFLAGS"} bash "$0" "$@"
fi

# debootstrap and chroot live in sbin, which a user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin
cd "$(dirname "$0")/../.."
repo=$PWD
cache=${WINE_CACHE:-/var/cache/mews-keyd-wine}
root=$cache/root
jobs=${WINE_JOBS:-2}
wingo=${WINE_GO:-1.26.10}
# Bumped when the chroot's recipe changes, so an old cache is rebuilt.
recipe="trixie wine wine64 v1"
patterns=("$@")
[ ${#patterns[@]} -gt 0 ] || patterns=(./...)

command -v debootstrap >/dev/null || {
	echo "test-windows: needs debootstrap (apt-get install debootstrap)" >&2
	exit 2
}
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -n 9 || {
	echo "test-windows: waiting for another run using $cache"
	flock 9
}

# mounted lists the mount points at or below $1, deepest first.
mounted() {
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

mount_root() {
	local dir=$1
	mount -t proc proc "$dir/proc"
	mount -t sysfs sys "$dir/sys"
	mount --rbind /dev "$dir/dev"
	# Unmounting our copy of /dev must never unmount the host's.
	mount --make-rslave "$dir/dev"
	cp /etc/resolv.conf "$dir/etc/resolv.conf"
}

# stop_root ends wine and every other process still running in the chroot
# at $1 (only this script starts processes there), then unmounts it.
stop_root() {
	local dir=$1 pid m left=1 tries=0
	[ -d "$dir/proc/self" ] && chroot "$dir" /usr/bin/env WINEPREFIX=/opt/wineprefix wineserver -k 2>/dev/null || true
	while [ "$left" -gt 0 ] && [ "$tries" -lt 50 ]; do
		left=0
		tries=$((tries + 1))
		for pid in $(ls /proc | grep -E '^[0-9]+$'); do
			if [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$dir" ]; then
				kill -9 "$pid" 2>/dev/null || true
				left=$((left + 1))
			fi
		done
		[ "$left" -eq 0 ] || sleep 0.1
	done
	for m in $(mounted "$dir"); do
		umount -l "$m" 2>/dev/null || true
	done
}

# remove_root deletes a chroot, refusing while anything is mounted in it
# (rm -rf through a bind mount of /dev would empty the host's /dev).
remove_root() {
	local dir=$1
	[ -e "$dir" ] || return 0
	stop_root "$dir"
	if [ -n "$(mounted "$dir")" ]; then
		echo "test-windows: $dir still has mounts, not removing it" >&2
		exit 1
	fi
	rm -rf --one-file-system "$dir"
}

host_mirror() {
	grep -ohE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 | tr -d ' '
}

build_root() {
	local new=$cache/root.new mirror=${DEBIAN_MIRROR:-$(host_mirror)}
	mirror=${mirror:-http://deb.debian.org/debian}
	echo "test-windows: building the Debian 13 chroot with wine in $root (from $mirror)"
	remove_root "$new"
	active=$new
	debootstrap --variant=minbase trixie "$new" "$mirror" >"$cache/build.log" 2>&1 || {
		tail -n 20 "$cache/build.log" >&2
		return 1
	}
	mount_root "$new"
	chroot "$new" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends wine wine64 >>"$cache/build.log" 2>&1 || {
		tail -n 20 "$cache/build.log" >&2
		return 1
	}
	# "wine: could not load ...syswow64\rundll32.exe" is expected: 64-bit only.
	chroot "$new" /usr/bin/env WINEDEBUG=-all WINEPREFIX=/opt/wineprefix XDG_RUNTIME_DIR=/tmp \
		wineboot -i >>"$cache/build.log" 2>&1
	chroot "$new" /usr/bin/env WINEPREFIX=/opt/wineprefix wineserver -w
	chroot "$new" apt-get clean
	stop_root "$new"
	echo "$recipe" >"$new/.mews-recipe"
	remove_root "$root"
	mv "$new" "$root"
	active=""
}

active=""
cleanup() {
	# First what starts processes in the chroot (the xargs running the test
	# binaries), then what runs there.
	local job
	for job in $(jobs -p); do
		kill "$job" 2>/dev/null || true
	done
	[ -z "$active" ] || stop_root "$active"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
if [ "$(cat "$root/.mews-recipe" 2>/dev/null)" != "$recipe" ]; then
	build_root
fi
echo "test-windows: chroot ready ($((SECONDS - start))s)"

# The Windows Go toolchain and the module's dependencies, for tests that
# run `go build` at test time; GOPROXY=off inside wine.
export GOFLAGS=-modcacherw
GOMODCACHE=$root/opt/gomod go mod download
GOMODCACHE=$root/opt/gomod go mod download "golang.org/toolchain@v0.0.1-go$wingo.windows-amd64"

# A fresh copy of the module and freshly built binaries for every run.
work=$root/work
logs=$cache/logs
rm -rf --one-file-system "$work" "$logs"
mkdir -p "$work/src" "$work/bin" "$logs"
tar -C "$repo" --exclude=./.git --exclude=./bin --exclude=./dist -cf - . | tar -C "$work/src" -xf -

mapfile -t pkgs < <(GOOS=windows GOARCH=amd64 go list \
	-f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' "${patterns[@]}")
[ ${#pkgs[@]} -gt 0 ] || {
	echo "test-windows: no packages with tests in ${patterns[*]}" >&2
	exit 2
}
module=$(go list -m)
GOOS=windows GOARCH=amd64 go build -o "$work/bin/mews-keyd.exe" .
# go test -c names each binary after its package's last path element.
for p in "${pkgs[@]}"; do
	rel=${p#"$module"}
	rel=${rel#/}
	echo "${rel:-.} ${p##*/}"
done >"$work/list"
GOOS=windows GOARCH=amd64 go test -c -o "$work/bin/" "${pkgs[@]}"
echo "test-windows: built ${#pkgs[@]} test binaries ($((SECONDS - start))s)"

# Each run gets a clean Windows temp folder.
rm -rf "$root/opt/wineprefix/drive_c/users/root/AppData/Local/Temp"
mkdir -p "$root/opt/wineprefix/drive_c/users/root/AppData/Local/Temp"
active=$root
stop_root "$root" # what a killed run (SIGKILL skips the trap) left behind
mount_root "$root"

gotool="Z:\\opt\\gomod\\golang.org\\toolchain@v0.0.1-go$wingo.windows-amd64\\bin"
cat >"$work/run" <<EOF
#!/bin/sh
# run FOLDER NAME ARGS...: runs /work/bin/NAME.exe under wine in /work/src/FOLDER.
cd "/work/src/\$1" || exit 1
name=\$2
shift 2
exec env WINEDEBUG=-all WINEPREFIX=/opt/wineprefix XDG_RUNTIME_DIR=/tmp HOME=/root \
	WINEPATH='$gotool' GOMODCACHE='Z:\\opt\\gomod' GOCACHE='Z:\\opt\\gocache' GOPATH='Z:\\opt\\gopath' \
	GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local GOTELEMETRY=off CGO_ENABLED=0 GOFLAGS= \
	timeout -k 10s 6m wine "/work/bin/\$name.exe" "\$@"
EOF
chmod +x "$work/run"

# run_pkg FOLDER NAME: one package's tests; the status goes to the log's
# last line so parallel runs need no other bookkeeping.
run_pkg() {
	local rel=$1 name=$2 t0=$SECONDS rc=0
	# shellcheck disable=SC2086 # WINE_TESTFLAGS is a list of flags
	chroot "$root" /work/run "$rel" "$name.test" -test.v -test.timeout 5m $WINE_TESTFLAGS \
		>"$logs/$name.log" 2>&1 </dev/null || rc=$?
	echo "$rel $rc $((SECONDS - t0))" >"$logs/$name.status"
}
export -f run_pkg
WINE_TESTFLAGS=${WINE_TESTFLAGS:-}
export root logs WINE_TESTFLAGS
# In the background, so that a signal runs the trap now rather than after
# every test binary has finished (wine ignores SIGINT).
xargs -P "$jobs" -L 1 bash -c 'run_pkg "$@"' _ <"$work/list" &
wait $!

# The demo runs with the whole suite, not when the packages were narrowed.
demo_rc=skip
if [ $# -eq 0 ]; then
	t0=$SECONDS
	demo_rc=0
	chroot "$root" /work/run . mews-keyd demo >"$logs/demo.log" 2>&1 </dev/null &
	wait $! || demo_rc=$?
	demo_time=$((SECONDS - t0))
fi

stop_root "$root"
active=""

failed=0
printf '\n%-28s %-6s %s\n' package result seconds
while read -r rel name; do
	read -r _ rc secs <"$logs/$name.status"
	result=PASS
	if [ "$rc" -ne 0 ]; then
		result=FAIL
		failed=$((failed + 1))
	fi
	printf '%-28s %-6s %s\n' "$rel" "$result" "$secs"
done <"$work/list"
if [ "$demo_rc" != skip ]; then
	result=PASS
	if [ "$demo_rc" -ne 0 ]; then
		result=FAIL
		failed=$((failed + 1))
	fi
	printf '%-28s %-6s %s\n' "mews-keyd.exe demo" "$result" "$demo_time"
fi

if [ "$failed" -gt 0 ]; then
	echo
	while read -r rel name; do
		read -r _ rc _ <"$logs/$name.status"
		[ "$rc" -ne 0 ] || continue
		echo "--- $rel (exit $rc; full log: $logs/$name.log)"
		grep -E -- '^\s*--- FAIL|^panic:|^FAIL' "$logs/$name.log" | head -n 20 || true
		# A binary that ended without its verdict (os.Exit, a crash, the
		# timeout) shows how it ended.
		grep -qE '^(PASS|FAIL)$' "$logs/$name.log" || tail -n 5 "$logs/$name.log"
	done <"$work/list"
	case $demo_rc in
	0 | skip) ;;
	*)
		echo "--- mews-keyd.exe demo (exit $demo_rc; full log: $logs/demo.log)"
		tail -n 20 "$logs/demo.log"
		;;
	esac
fi
echo "test-windows: $failed failed, $((SECONDS - start))s in all"
[ "$failed" -eq 0 ]
