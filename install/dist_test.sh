#!/usr/bin/env bash
# Builds the release into a temporary folder and checks what it holds.
# Usage: bash install/dist_test.sh      (needs dpkg-deb and unzip)
# MAIN_PKG=./install/cmd/render-unit packages a stand-in binary, to test the
# packaging while the command does not build; the version check is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
version=v9.8.7-1-gabc1234
deb_version=9.8.7+git20260101000000.abc1234
DIST_DIR=$out SOURCE_DATE_EPOCH=1767225600 bash install/dist.sh "$version"

fail=0
check() { # DESCRIPTION COMMAND...
	if "${@:2}" >/dev/null 2>&1; then
		echo "ok   $1"
	else
		echo "FAIL $1"
		fail=1
	fi
}

# A .deb's control has no license field; nfpm's is the package's record of it.
check "nfpm.yaml: license Apache-2.0" grep -qx 'license: Apache-2.0' install/nfpm.yaml
for arch in amd64 arm64; do
	deb="$out/mews-keyd_${deb_version}_$arch.deb"
	check "$arch: deb exists" test -f "$deb"
	contents=$(dpkg-deb -c "$deb")
	info=$(dpkg-deb -I "$deb")
	check "$arch: /usr/bin/mews-keyd executable" grep -Eq '^-rwxr-xr-x root/root .* \./usr/bin/mews-keyd$' <<<"$contents"
	check "$arch: unit in /lib/systemd/system" grep -Eq ' \./lib/systemd/system/mews-keyd\.service$' <<<"$contents"
	check "$arch: config 0640 root:mews-keyd" grep -Eq '^-rw-r----- root/mews-keyd .* \./etc/mews-keyd/config\.toml$' <<<"$contents"
	check "$arch: examples shipped" grep -Eq ' \./usr/share/doc/mews-keyd/examples/fias\.toml$' <<<"$contents"
	check "$arch: license in /usr/share/doc/mews-keyd/copyright" grep -Eq '^-rw-r--r-- root/root .* \./usr/share/doc/mews-keyd/copyright$' <<<"$contents"
	check "$arch: package name" grep -Eq '^ Package: mews-keyd$' <<<"$info"
	check "$arch: architecture" grep -Eq "^ Architecture: $arch\$" <<<"$info"
	check "$arch: version" grep -qx " Version: $deb_version" <<<"$info"
	for script in preinst postinst prerm postrm; do
		check "$arch: $script" grep -Eq "\\* +$script +#!/bin/sh" <<<"$info"
	done
	ctrl=$(mktemp -d)
	dpkg-deb -e "$deb" "$ctrl"
	check "$arch: config is a conffile" grep -qx /etc/mews-keyd/config.toml "$ctrl/conffiles"
	check "$arch: preinst creates the user" grep -q 'useradd --system' "$ctrl/preinst"
	check "$arch: postinst creates the state dir" grep -q '/var/lib/mews-keyd' "$ctrl/postinst"
	check "$arch: postinst adds the user to dialout" grep -q 'usermod -a -G dialout mews-keyd' "$ctrl/postinst"
	check "$arch: serial drop-in is a conffile" grep -qx /etc/systemd/system/mews-keyd.service.d/serial.conf "$ctrl/conffiles"
	data=$(mktemp -d)
	dpkg-deb -x "$deb" "$data"
	check "$arch: copyright is the Apache License 2.0" cmp "$data/usr/share/doc/mews-keyd/copyright" LICENSE
	dropin="$data/etc/systemd/system/mews-keyd.service.d/serial.conf"
	check "$arch: serial drop-in ships commented out" bash -c "grep -qx '#PrivateDevices=no' '$dropin' && ! grep -Eq '^(PrivateDevices|DeviceAllow)=' '$dropin'"
	check "$arch: unit runs the packaged binary" grep -qx 'ExecStart=/usr/bin/mews-keyd run --config /etc/mews-keyd/config.toml' "$data/lib/systemd/system/mews-keyd.service"
	if command -v systemd-analyze >/dev/null; then
		# verify needs an executable ExecStart; the amd64 binary runs here.
		unit="$data/mews-keyd.service"
		sed "s#/usr/bin/mews-keyd#$data/usr/bin/mews-keyd#" "$data/lib/systemd/system/mews-keyd.service" >"$unit"
		check "$arch: systemd-analyze verify" test -z "$(systemd-analyze verify --man=no "$unit" 2>&1)"
	fi
	rm -rf "$ctrl" "$data"
	if [[ ${MAIN_PKG:-.} == . ]]; then
		check "$arch: binary carries the version" grep -aqF "$version" "$out/mews-keyd_${version}_linux_$arch"
	fi
done

zip="$out/mews-keyd_${version}_windows_amd64.zip"
listing=$(unzip -l "$zip")
for f in mews-keyd.exe config.toml.example README.txt LICENSE.txt examples/fias.toml; do
	check "zip: $f" grep -Eq " $f\$" <<<"$listing"
done
check "checksums" bash -c "cd '$out' && sha256sum -c --quiet SHA256SUMS"

if [[ $fail != 0 ]]; then
	echo "dist_test: FAILED" >&2
	exit 1
fi
echo "dist_test: all checks passed"
