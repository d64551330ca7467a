#!/usr/bin/env bash
# Builds the release into dist/ (make dist):
#   mews-keyd_VERSION_linux_amd64, _linux_arm64, _windows_amd64.exe  binaries
#   mews-keyd_DEBVERSION_amd64.deb, _arm64.deb                       Debian packages
#   mews-keyd_VERSION_windows_amd64.zip                              exe, example configs, README, LICENSE
#   SHA256SUMS
# Usage: bash install/dist.sh VERSION
# Environment: DIST_DIR (default dist), MAIN_PKG (default ., the command),
# SOURCE_DATE_EPOCH (default: the commit's date, for the package version),
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

# The package version comes from the tag; the commit date orders the builds
# between tags (install.DebVersion). SOURCE_DATE_EPOCH, the reproducible
# builds convention, stands in for the commit date when set.
commit_epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
deb_version=$("$GO" run ./install/cmd/deb-version "$VERSION" "$commit_epoch")

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
		"LICENSE.txt=LICENSE"
	)
	for f in configs/*.toml; do
		zip_entries+=("examples/$(basename "$f")=$f")
	done
	echo "dist: package zip windows/amd64"
	"$GO" run ./install/cmd/mkzip "$DIST_DIR/mews-keyd_${VERSION}_windows_amd64.zip" "${zip_entries[@]}"
fi

(cd "$DIST_DIR" && sha256sum mews-keyd_* >SHA256SUMS)
echo "dist: done, see $DIST_DIR/"
