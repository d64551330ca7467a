package install

import (
	"context"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// SIGTERM (what systemd and docker send) cancels the daemon's context when
// running in the foreground, and the clean stop is not an error.
func TestRunServiceForegroundStopsOnSIGTERM(t *testing.T) {
	if !Interactive() {
		t.Skip("test process runs under a service manager")
	}
	started := make(chan struct{})
	s, err := New(Options{
		ConfigPath: "/etc/mews-keyd/config.toml",
		Logger:     zerolog.Nop(),
		Run: func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() { result <- s.RunService(context.Background()) }()
	<-started
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err != nil {
		t.Fatalf("RunService after SIGTERM = %v, want nil", err)
	}
}
