package exec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/exec"
	"github.com/mews-keyd/mews-keyd/keys/keystest"
	"github.com/mews-keyd/mews-keyd/keys/wire"
)

// program is the fake vendor encoder built from testdata/encoder.
var program string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keys-exec-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	program = filepath.Join(dir, "encoder")
	if runtime.GOOS == "windows" {
		program += ".exe"
	}
	build := osexec.Command("go", "build", "-o", program, "./testdata/encoder")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	code := 1
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the fake encoder program:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// open returns an encoder running the fake program with the extra env and
// the state directory the program reports into.
func open(t *testing.T, env map[string]string, log zerolog.Logger) (*exec.Encoder, string) {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{"ENCODER_STATE_DIR": dir}
	for k, v := range env {
		vars[k] = v
	}
	enc, err := exec.New(exec.Config{Command: []string{program}, Env: vars}, keys.Env{Name: "frontdesk", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return enc, dir
}

func TestConformance(t *testing.T) {
	keystest.Run(t, keystest.Harness{
		FailMessage: "no card presented",
		Open: func(t *testing.T, b keystest.Behaviour) keystest.Rig {
			enc, dir := open(t, map[string]string{"ENCODER_BEHAVIOUR": b.String()}, zerolog.Nop())
			return keystest.Rig{Encoder: enc, Peak: func() int { return peak(dir) }}
		},
	})
}

func peak(dir string) int {
	if _, err := os.Stat(filepath.Join(dir, "overlap")); err == nil {
		return 2
	}
	if _, err := os.Stat(filepath.Join(dir, "runs")); err == nil {
		return 1
	}
	return 0
}

// A vendor program that hangs after starting a helper must not leave the
// helper running: the whole process group (Linux) or job object (Windows)
// is killed.
func TestTimeoutKillsChildren(t *testing.T) {
	enc, dir := open(t, nil, zerolog.Nop())
	if _, err := issueAs(t, enc, "CHILD", 500*time.Millisecond); err == nil {
		t.Fatal("CHILD succeeded")
	}
	b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatalf("the program did not start its child: %v", err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

func issueAs(t *testing.T, enc *exec.Encoder, lastName string, timeout time.Duration) (keys.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req := keystest.SampleRequest(keys.KindCard)
	req.Guest.LastName = lastName
	return enc.Issue(ctx, req)
}

func TestMisbehavingProgram(t *testing.T) {
	tests := []struct {
		lastName string
		msg      string
		maybeCut bool
	}{
		{"FAILEXIT", "encoder jammed", false},
		{"CRASH", "encoder program exited with status 3", true},
		{"GARBAGE", "encoder program gave no valid answer", true},
		{"EMPTY", "encoder program gave no valid answer", true},
		{"NOOK", "encoder program gave no valid answer", true},
		{"HUGE", "encoder program gave no valid answer", true},
	}
	if runtime.GOOS != "windows" {
		// A signal death has no exit status on Unix.
		tests = append(tests, struct {
			lastName string
			msg      string
			maybeCut bool
		}{"KILLED", "encoder program crashed", true})
	}
	enc, _ := open(t, nil, zerolog.Nop())
	for _, tt := range tests {
		t.Run(tt.lastName, func(t *testing.T) {
			_, err := issueAs(t, enc, tt.lastName, 10*time.Second)
			var ke *keys.Error
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v (%T), want *keys.Error", err, err)
			}
			if ke.Msg != tt.msg || ke.MaybeCut != tt.maybeCut {
				t.Errorf("got Msg %q MaybeCut %v, want %q %v (err: %v)", ke.Msg, ke.MaybeCut, tt.msg, tt.maybeCut, err)
			}
		})
	}
}

func TestTimeoutMessage(t *testing.T) {
	enc, _ := open(t, nil, zerolog.Nop())
	_, err := issueAs(t, enc, "HANG", 300*time.Millisecond)
	if got := keys.Message(err); got != "no answer from encoder program within 300ms" {
		t.Errorf("Message = %q", got)
	}
	if !keys.MaybeCut(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %#v, want MaybeCut and DeadlineExceeded", err)
	}
}

func TestRequestOnStdin(t *testing.T) {
	enc, dir := open(t, map[string]string{"ENCODER_TAG": "from-config"}, zerolog.Nop())
	req := keystest.SampleRequest(keys.KindDigital)
	req.APIURL = "https://encoder.local/api"
	res, err := enc.Update(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 2 || res.Keys[0] != (keys.Key{ID: "1", Type: keys.KeyPinCode, Value: "update-1"}) {
		t.Errorf("keys = %+v", res.Keys)
	}
	if res.Note != "2 keys for room 0101" {
		t.Errorf("note = %q", res.Note)
	}
	b, err := os.ReadFile(filepath.Join(dir, "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got wire.Request
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Operation != wire.Update || got.IdempotencyKey != req.IdempotencyKey || got.Guest.NormalizedLastName != "Novak" ||
		got.APIURL != req.APIURL || got.ValidUntil != req.ValidUntil.Format(time.RFC3339) {
		t.Errorf("program got %s", b)
	}
	runs, err := os.ReadFile(filepath.Join(dir, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	if string(runs) != "from-config\n" {
		t.Errorf("ENCODER_TAG seen by the program = %q, want the configured value", runs)
	}
}

// Guest data on stderr must reach only the debug log.
func TestStderrAtDebugOnly(t *testing.T) {
	for _, level := range []zerolog.Level{zerolog.DebugLevel, zerolog.InfoLevel} {
		var buf bytes.Buffer
		enc, _ := open(t, nil, zerolog.New(&buf).Level(level))
		if _, err := issueAs(t, enc, "CRASH", 10*time.Second); err == nil {
			t.Fatal("CRASH succeeded")
		}
		logged := strings.Contains(buf.String(), "encoding for Zoë CRASH")
		if logged != (level == zerolog.DebugLevel) {
			t.Errorf("level %v: stderr logged = %v; log: %s", level, logged, buf.String())
		}
	}
}

func TestProgramNotFound(t *testing.T) {
	_, err := exec.New(exec.Config{Command: []string{"/nonexistent/encoder"}}, keys.Env{})
	if err == nil || !strings.HasPrefix(err.Error(), "command: ") {
		t.Fatalf("err = %v, want one naming the command key", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  exec.Config
		want string
	}{
		{exec.Config{}, "command: must not be empty"},
		{exec.Config{Command: []string{" "}}, "command: must not be empty"},
		{exec.Config{Command: []string{"x"}, Env: map[string]string{"A=B": "1"}}, `env: "A=B" is not a valid variable name`},
	} {
		if err := tt.cfg.Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestRegisteredConfig(t *testing.T) {
	d, ok := keys.Lookup("exec")
	if !ok {
		t.Fatal(`driver "exec" not registered`)
	}
	cfg := d.NewConfig()
	doc := fmt.Sprintf("command = [%q, \"--port\", \"COM3\"]\n[env]\nVENDOR_HOME = \"/opt/v\"\n", program)
	if _, err := toml.Decode(doc, cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.(*exec.Config)
	if len(c.Command) != 3 || c.Command[2] != "COM3" || c.Env["VENDOR_HOME"] != "/opt/v" {
		t.Fatalf("decoded %+v", c)
	}
	enc, err := d.Open(cfg, keys.Env{Name: "frontdesk"})
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
}
