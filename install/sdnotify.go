package install

import (
	"context"
	"os"
	"strconv"
	"time"
)

// The sd_notify(3) protocol tells systemd, through the datagram socket in
// $NOTIFY_SOCKET, that the daemon is ready (Type=notify), still alive
// (WatchdogSec=) or stopping. Everywhere else these calls do nothing.

// Ready tells systemd that start-up is complete.
func Ready() error { return notify("READY=1") }

// Reloading tells systemd that the daemon is re-reading its configuration;
// Ready ends it. MONOTONIC_USEC is the moment, as sd_notify(3) asks.
func Reloading() error {
	return notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping tells systemd that a clean shutdown has begun.
func Stopping() error { return notify("STOPPING=1") }

// Watchdog tells systemd that the daemon is alive.
func Watchdog() error { return notify("WATCHDOG=1") }

// SetStatus sets the one-line status that `systemctl status` shows.
func SetStatus(text string) error { return notify("STATUS=" + text) }

// WatchdogLoop pings the systemd watchdog at half its timeout for as long as
// healthy() returns true, so that systemd kills and restarts a daemon whose
// pipeline has hung. It returns nil when ctx ends or when no watchdog is
// configured, and an error if a ping cannot be sent.
func WatchdogLoop(ctx context.Context, healthy func() bool) error {
	interval, ok := watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
	if !ok {
		return nil
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if !healthy() {
			continue
		}
		if err := Watchdog(); err != nil {
			return err
		}
	}
}

// watchdogInterval reads the watchdog settings systemd passes in the
// environment. WATCHDOG_PID, when set, names the process the watchdog is
// meant for; a child that inherited the variables must not ping.
func watchdogInterval(usec, pid string, self int) (time.Duration, bool) {
	if pid != "" && pid != strconv.Itoa(self) {
		return 0, false
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return time.Duration(n) * time.Microsecond / 2, true
}
