package install

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// scm stands in for kardianos' Run under the service control manager: it
// starts the program and returns only after the SCM has stopped it.
type scm struct {
	p    *program
	stop chan struct{}
}

func (s scm) run() error {
	if err := s.p.Start(nil); err != nil {
		return err
	}
	<-s.stop
	return s.p.Stop(nil)
}

// A daemon that fails on its own ends RunService with its error while the
// SCM still counts the service as running, so that main exits and the SCM
// restarts it; nothing calls os.Exit behind the caller's back.
func TestManagedDaemonFailureReturns(t *testing.T) {
	boom := errors.New("journal corrupt")
	s := scm{p: newProgram(func(context.Context) error { return boom }, zerolog.Nop(), time.Minute), stop: make(chan struct{})}
	defer close(s.stop)
	if err := runManaged(s.run, s.p); !errors.Is(err, boom) {
		t.Fatalf("runManaged = %v, want %v", err, boom)
	}
}

// A stop by the SCM is a clean exit.
func TestManagedStopIsClean(t *testing.T) {
	s := scm{p: newProgram(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, zerolog.Nop(), time.Minute), stop: make(chan struct{})}
	close(s.stop)
	if err := runManaged(s.run, s.p); err != nil {
		t.Fatalf("runManaged after the SCM stopped the service = %v", err)
	}
}
