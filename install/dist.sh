#!/usr/bin/env bash
# Builds the release into dist/ (make dist):
#   mews-keyd_VERSION_linux_amd64, _linux_arm64, _windows_amd64.exe  binaries
#   mews-keyd_DEBVERSION_amd64.deb, _arm64.deb                       Debian packages
#   mews-keyd_VERSION_windows_amd64.zip                              exe, example configs, README
#   SHA256SUMS
# Usage: bash install/dist.sh VERSION
# Environment: DIST_DIR (default dist), MAIN_PKG (default ., the command),
# DIST_TARGETS (default "linux/amd64 linux/arm64 windows/amd64": what to
# build; make test-systemd needs only the host's .deb).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${1:?usage: install/dist.sh VERSION}
DIST_DIR=${DIST_DIR:-dist}
MAIN_PKG=${MAIN_PKG:-.}
GO=${GO:-go}
NFPM=("$GO" run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2)
DIST_TARGETS=${DIST_TARGETS:-linux/amd64 linux/arm64 windows/amd64}

# A Debian version must start with a digit and may hold no '-' without a
# revision: v1.2.3 -> 1.2.3, v1.2.3-4-gabc -> 1.2.3+4+gabc, abc1234 -> 0~abc1234.
deb_version=${VERSION#v}
deb_version=${deb_version//-/+}
deb_version=${deb_version//[^A-Za-z0-9.+~]/}
[[ $deb_version =~ ^[0-9] ]] || deb_version="0~$deb_version"

# The shipped config: the FIAS example, the most common set-up.
example=configs/fias.toml
if [[ ! -f $example ]]; then
	example=$(ls configs/*.toml 2>/dev/null | head -n1 || true)
fi
if [[ -z $example ]]; then
	echo "dist: no example configuration in configs/" >&2
	exit 1
fi

mkdir -p "$DIST_DIR"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

build() { # GOOS GOARCH OUT
	echo "dist: build $1/$2"
	CGO_ENABLED=0 GOOS=$1 GOARCH=$2 "$GO" build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION" -o "$3" "$MAIN_PKG"
}

mkdir -p "$stage/examples"
cp configs/*.toml "$stage/examples/"
cp "$example" "$stage/config.toml"
"$GO" run ./install/cmd/render-unit >"$stage/mews-keyd.service"

for target in $DIST_TARGETS; do
	[[ $target == linux/* ]] || continue
	arch=${target#linux/}
	bin="$DIST_DIR/mews-keyd_${VERSION}_linux_$arch"
	build linux "$arch" "$bin"
	cp "$bin" "$stage/mews-keyd"
	echo "dist: package deb $arch"
	ARCH=$arch DEB_VERSION=$deb_version STAGE=$stage \
		"${NFPM[@]}" package --config install/nfpm.yaml --packager deb \
		--target "$DIST_DIR/mews-keyd_${deb_version}_$arch.deb" >/dev/null
done

if [[ " $DIST_TARGETS " == *" windows/amd64 "* ]]; then
	exe="$DIST_DIR/mews-keyd_${VERSION}_windows_amd64.exe"
	build windows amd64 "$exe"
	zip_entries=(
		"mews-keyd.exe=$exe"
		"config.toml.example=$example"
		"README.txt=install/README-windows.txt"
	)
	for f in configs/*.toml; do
		zip_entries+=("examples/$(basename "$f")=$f")
	done
	echo "dist: package zip windows/amd64"
	"$GO" run ./install/cmd/mkzip "$DIST_DIR/mews-keyd_${VERSION}_windows_amd64.zip" "${zip_entries[@]}"
fi

(cd "$DIST_DIR" && sha256sum mews-keyd_* >SHA256SUMS)
echo "dist: done, see $DIST_DIR/"
