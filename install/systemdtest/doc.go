// Package systemdtest holds `make test-systemd`: the Debian package is
// installed in a Debian 12 container booted with systemd as PID 1, as an
// operator would install it, and the service is checked from outside with
// nsenter against a Mews simulator and a FIAS lock system on loopback.
//
// The test is behind the build tag "systemd" because it needs root,
// systemd-nspawn (package systemd-container), nsenter and debootstrap, and
// downloads a minimal Debian the first time (cached in
// $MEWS_KEYD_TEST_CACHE, default /var/cache/mews-keyd-test):
//
//	go test -tags systemd -count=1 -v ./install/systemdtest/
package systemdtest
