package mews_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// leakCheck collects every log line (at debug level) and every error string
// a test produces, and fails the test at its end if a token is among them.
type leakCheck struct {
	logs syncBuffer
	mu   sync.Mutex
	errs []string
}

func newAPILeakCheck(t *testing.T) *leakCheck {
	t.Helper()
	lc := &leakCheck{}
	t.Cleanup(func() {
		all := lc.logs.String() + strings.Join(lc.errs, "\n")
		for _, tok := range []string{mewstest.ClientToken, mewstest.AccessToken, wireClientToken, wireAccessToken} {
			if strings.Contains(all, tok) {
				t.Errorf("a token leaked into logs or errors:\n%s", all)
			}
		}
	})
	return lc
}

func (lc *leakCheck) logger() zerolog.Logger {
	return zerolog.New(&lc.logs).Level(zerolog.DebugLevel)
}

// note records an error's text (and its %+v form) for the leak check and
// returns the error.
func (lc *leakCheck) note(err error) error {
	if err != nil {
		lc.mu.Lock()
		lc.errs = append(lc.errs, err.Error(), fmt.Sprintf("%+v %#v", err, err))
		lc.mu.Unlock()
	}
	return err
}

// newClient returns a client of srv with fast retries, logging into lc.
func apiClient(t *testing.T, srv *mewstest.Server, lc *leakCheck, edit func(*mews.ClientConfig)) *mews.Client {
	t.Helper()
	cfg := mews.ClientConfig{
		APIURL:       srv.URL(),
		ClientToken:  mewstest.ClientToken,
		AccessToken:  mewstest.AccessToken,
		Client:       "mews-keyd test",
		Logger:       lc.logger(),
		RetryInitial: 10 * time.Millisecond,
		MaxElapsed:   5 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := mews.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func apiServer(t *testing.T, opts ...mewstest.Option) *mewstest.Server {
	t.Helper()
	srv := mewstest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

func apiContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewClientRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]mews.ClientConfig{
		"plain http to a remote host": {APIURL: "http://api.mews.com", ClientToken: "c", AccessToken: "a"},
		"no URL":                      {ClientToken: "c", AccessToken: "a"},
		"no client token":             {APIURL: "https://api.mews.com", AccessToken: "a"},
		"no access token":             {APIURL: "https://api.mews.com", ClientToken: "c"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := mews.NewClient(cfg); err == nil {
				t.Fatal("NewClient accepted it")
			}
		})
	}
}

func TestCommandOperations(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)

	id, err := c.AddKeyCutterCommand(ctx, mews.AddKeyCutterCommand{
		KeyCutterID: mewstest.KeyCutter1.ID, ReservationID: mewstest.ReservationCheckedIn, KeyCount: 2})
	if lc.note(err) != nil {
		t.Fatal(err)
	}

	t.Run("active", func(t *testing.T) {
		cmds, err := c.ActiveCommands(ctx)
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		if len(cmds) != 1 || cmds[0].ID != id || cmds[0].State != mews.CommandPending {
			t.Fatalf("active commands = %+v, want the one Pending command %s", cmds, id)
		}
		if cmds[0].CreatedUtc.Location() != time.UTC {
			t.Errorf("CreatedUtc in %s, want UTC", cmds[0].CreatedUtc.Location())
		}
		data, err := cmds[0].KeyCutter()
		if err != nil {
			t.Fatal(err)
		}
		if data.KeyCount != 2 || !slices.Equal(data.LockIDs, []string{"101"}) || data.LastName != mewstest.CustomerNovak.LastName {
			t.Errorf("key cutter data = %+v", data)
		}
	})
	t.Run("by ids", func(t *testing.T) {
		cmds, err := c.CommandsByIDs(ctx, []string{id, "00000000-0000-4000-8000-000000000000"})
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		if len(cmds) != 1 || cmds[0].ID != id || cmds[0].State != mews.CommandReceived {
			t.Fatalf("commands = %+v, want %s Received", cmds, id)
		}
	})
	t.Run("update", func(t *testing.T) {
		progress := 0.5
		for _, u := range []mews.CommandUpdate{
			{ID: id, State: mews.CommandProcessing, Progress: &progress, Notes: "dropped: not final"},
			{ID: id, State: mews.CommandProcessed, Progress: &progress, Notes: "2 keys for room 101"},
		} {
			if err := c.UpdateCommand(ctx, u); lc.note(err) != nil {
				t.Fatalf("update to %s: %v", u.State, err)
			}
		}
		want := []mews.CommandState{mews.CommandPending, mews.CommandReceived, mews.CommandProcessing, mews.CommandProcessed}
		if got := srv.StateHistory(id); !slices.Equal(got, want) {
			t.Errorf("state history = %v, want %v", got, want)
		}
		if got := srv.CommandNotes(id); got != "2 keys for room 101" {
			t.Errorf("notes = %q", got)
		}
	})
	t.Run("final state is forbidden", func(t *testing.T) {
		err := lc.note(c.UpdateCommand(ctx, mews.CommandUpdate{ID: id, State: mews.CommandError, Notes: "late"}))
		var apiErr *mews.APIError
		if !errors.Is(err, mews.ErrForbidden) || !errors.As(err, &apiErr) || apiErr.Message == "" || apiErr.RequestID == "" {
			t.Fatalf("err = %v, want a 403 APIError with Message and RequestID", err)
		}
	})
	t.Run("no commands", func(t *testing.T) {
		cmds, err := c.CommandsByIDs(ctx, nil)
		if lc.note(err) != nil || len(cmds) != 0 {
			t.Fatalf("CommandsByIDs(nil) = %v, %v", cmds, err)
		}
	})
}

func TestReadOperations(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)

	t.Run("devices", func(t *testing.T) {
		devs, err := c.Devices(ctx)
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		if !slices.Contains(devs, mewstest.KeyCutter1) || !slices.Contains(devs, mewstest.Printer1) {
			t.Errorf("devices = %+v", devs)
		}
	})
	t.Run("reservations by id", func(t *testing.T) {
		rs, err := c.Reservations(ctx, mews.ReservationFilter{IDs: []string{mewstest.ReservationCheckedIn, mewstest.ReservationDeparted}})
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		if len(rs) != 2 {
			t.Fatalf("got %d reservations, want 2", len(rs))
		}
		for _, r := range rs {
			if r.ScheduledStartUtc.Location() != time.UTC || r.ActualStartUtc == nil || r.ActualStartUtc.Location() != time.UTC {
				t.Errorf("reservation %s: times not in UTC: %+v", r.ID, r)
			}
			// Decoded from an answer with every field Mews sends.
			if r.Number == "" || r.ServiceID == "" || r.AccountID == "" || r.AssignedResourceID == "" || r.CreatedUtc.IsZero() {
				t.Errorf("reservation %s decoded as %+v", r.ID, r)
			}
		}
	})
	t.Run("reservations by state and update time", func(t *testing.T) {
		rs, err := c.Reservations(ctx, mews.ReservationFilter{
			UpdatedFrom: time.Now().AddDate(0, -1, 0),
			States:      []mews.ReservationState{mews.ReservationStarted},
		})
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		if want := []string{mewstest.ReservationCheckedIn, mewstest.ReservationLongStay}; !slices.Equal(ids, want) {
			t.Errorf("started reservations = %v, want %v", ids, want)
		}
	})
	t.Run("resources", func(t *testing.T) {
		rs, err := c.Resources(ctx, []string{mewstest.RoomID("101"), mewstest.RoomID("112")})
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		if len(rs) != 2 || rs[0].Name == "" || !rs[0].IsActive || len(rs[0].Data) == 0 {
			t.Errorf("resources = %+v", rs)
		}
	})
	t.Run("customers", func(t *testing.T) {
		cs, err := c.Customers(ctx, []string{mewstest.CustomerAngstrom.ID})
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0] != mewstest.CustomerAngstrom {
			t.Errorf("customers = %+v, want %+v", cs, mewstest.CustomerAngstrom)
		}
	})
}

func TestAccessTokenOperations(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)
	cet := time.FixedZone("CET", 3600)
	start := time.Date(2030, 1, 2, 15, 0, 0, 0, cet)

	added, err := c.AddAccessTokens(ctx, []mews.ResourceAccessToken{{
		ServiceOrderID: mewstest.ReservationCheckedIn, ResourceID: mewstest.RoomID("101"),
		Type: mews.AccessTokenPinCode, Value: "4711",
		ValidityStartUtc: start, ValidityEndUtc: start.Add(48 * time.Hour),
	}})
	if lc.note(err) != nil {
		t.Fatal(err)
	}
	if len(added) != 1 || added[0].ID == "" || !added[0].ValidityStartUtc.Equal(start) || added[0].ValidityStartUtc.Location() != time.UTC {
		t.Fatalf("added = %+v", added)
	}
	id := added[0].ID

	end := start.Add(72 * time.Hour)
	value := "0815"
	updated, err := c.UpdateAccessTokens(ctx, []mews.AccessTokenUpdate{{ID: id, Value: &value, ValidityEndUtc: &end}})
	if lc.note(err) != nil {
		t.Fatal(err)
	}
	if len(updated) != 1 || updated[0].Value != value || !updated[0].ValidityEndUtc.Equal(end) || !updated[0].ValidityStartUtc.Equal(start) {
		t.Fatalf("updated = %+v", updated)
	}

	got, err := c.AccessTokens(ctx, []string{mewstest.ReservationCheckedIn})
	if lc.note(err) != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id || got[0].Value != value {
		t.Fatalf("access tokens = %+v", got)
	}

	if err := c.DeleteAccessTokens(ctx, []string{id}); lc.note(err) != nil {
		t.Fatal(err)
	}
	for _, tok := range srv.AccessTokens() {
		if tok.ID == id && tok.IsActive {
			t.Errorf("token %s still active after delete", id)
		}
	}
}

func TestPagination(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) { cfg.PageSize = 2 })
	ctx := apiContext(t)

	ids := []string{mewstest.CustomerNovak.ID, mewstest.CustomerAngstrom.ID, mewstest.CustomerMuller.ID,
		mewstest.CustomerDvorakova.ID, mewstest.CustomerOBrien.ID}
	cs, err := c.Customers(ctx, ids)
	if lc.note(err) != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cu := range cs {
		got = append(got, cu.ID)
	}
	if !sameSet(got, ids) {
		t.Errorf("customers %v, want %v", got, ids)
	}
	// Pages of 2, 2 and 1: the short page ends it.
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	var cursors []any
	for _, r := range reqs {
		lim, _ := r.Body["Limitation"].(map[string]any)
		if lim["Count"] != float64(2) {
			t.Errorf("Limitation = %v, want Count 2", r.Body["Limitation"])
		}
		cursors = append(cursors, lim["Cursor"])
	}
	if cursors[0] != nil || cursors[1] != got[1] || cursors[2] != got[3] {
		t.Errorf("cursors sent = %v, want none, then the last id of each page (%v)", cursors, got)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestIDListsAreSplit(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)

	ids := make([]string, 2500)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	if _, err := c.CommandsByIDs(ctx, ids); lc.note(err) != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, r := range srv.Requests() {
		list, _ := r.Body["CommandIds"].([]any)
		sizes = append(sizes, len(list))
	}
	if !slices.Equal(sizes, []int{1000, 1000, 500}) {
		t.Errorf("ids per request = %v, want [1000 1000 500]", sizes)
	}
}

// TestStatuses checks, for every documented status, the error's type and
// sentinel and whether the client retried, counted in the server's log.
func TestStatuses(t *testing.T) {
	for _, tc := range []struct {
		status   int
		sentinel error
		retried  bool
	}{
		{http.StatusBadRequest, mews.ErrBadRequest, false},
		{http.StatusUnauthorized, mews.ErrUnauthorized, false},
		{http.StatusForbidden, mews.ErrForbidden, false},
		{http.StatusNotFound, mews.ErrNotFound, false},
		{http.StatusConflict, mews.ErrConflict, false},
		{http.StatusRequestTimeout, mews.ErrTimeout, true},
		{http.StatusTooManyRequests, mews.ErrRateLimited, true},
		{http.StatusInternalServerError, mews.ErrServer, true},
		{http.StatusServiceUnavailable, mews.ErrServer, true},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			lc := newAPILeakCheck(t)
			srv := apiServer(t)
			var mu sync.Mutex
			var seen []int
			c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) {
				cfg.MaxElapsed = 300 * time.Millisecond
				cfg.OnRequest = func(op string, status int, _ time.Duration) {
					mu.Lock()
					defer mu.Unlock()
					seen = append(seen, status)
				}
			})
			ctx := apiContext(t)

			// Twice: a retried status then succeeds on the third request.
			srv.FailNext(mews.OpActiveCommands, 2, tc.status, "")
			_, err := c.ActiveCommands(ctx)
			lc.note(err)
			if tc.retried {
				if err != nil {
					t.Fatalf("err = %v, want success after retries", err)
				}
				if n := srv.RequestCount(mews.OpActiveCommands); n != 3 {
					t.Fatalf("%d requests, want 3", n)
				}
				mu.Lock()
				defer mu.Unlock()
				if !slices.Equal(seen, []int{tc.status, tc.status, http.StatusOK}) {
					t.Errorf("OnRequest saw %v", seen)
				}
				return
			}
			var apiErr *mews.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.status || apiErr.Op != mews.OpActiveCommands || apiErr.RequestID == "" {
				t.Fatalf("err = %#v, want an APIError for %d with Op and RequestID", err, tc.status)
			}
			if !errors.Is(err, tc.sentinel) || mews.Retryable(err) {
				t.Errorf("err = %v: Is(%v) = %v, Retryable = %v", err, tc.sentinel, errors.Is(err, tc.sentinel), mews.Retryable(err))
			}
			if n := srv.RequestCount(mews.OpActiveCommands); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
		})
	}
}

func TestRetriesGiveUpWithinBudget(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) { cfg.MaxElapsed = 200 * time.Millisecond })
	ctx := apiContext(t)

	srv.FailNext(mews.OpActiveCommands, 1000, http.StatusBadGateway, "")
	began := time.Now()
	_, err := c.ActiveCommands(ctx)
	lc.note(err)
	if !errors.Is(err, mews.ErrServer) || !mews.Retryable(err) {
		t.Fatalf("err = %v, want a retryable ErrServer", err)
	}
	if n := srv.RequestCount(mews.OpActiveCommands); n < 2 {
		t.Errorf("%d requests, want retries", n)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("gave up after %s, budget 200ms", d)
	}
}

func TestRealUnauthorized(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) { cfg.AccessToken = "wrong-" + mewstest.AccessToken })
	_, err := c.Devices(apiContext(t))
	lc.note(err)
	if !errors.Is(err, mews.ErrUnauthorized) || srv.RequestCount("") != 1 {
		t.Fatalf("err = %v after %d requests, want one 401", err, srv.RequestCount(""))
	}
}

// TestNotRepeatedIfMaybeDone: creating a command is retried only when Mews
// certainly did not act (429), never after a 5xx, which may come after the
// command was created: a duplicate would cut a second card.
func TestNotRepeatedIfMaybeDone(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)
	add := mews.AddKeyCutterCommand{KeyCutterID: mewstest.KeyCutter1.ID, ReservationID: mewstest.ReservationCheckedIn, KeyCount: 1}

	srv.FailNext(mews.OpAddKeyCutter, 1, http.StatusServiceUnavailable, "")
	_, err := c.AddKeyCutterCommand(ctx, add)
	lc.note(err)
	if !errors.Is(err, mews.ErrServer) || srv.RequestCount(mews.OpAddKeyCutter) != 1 {
		t.Fatalf("err = %v after %d requests, want one 503", err, srv.RequestCount(mews.OpAddKeyCutter))
	}

	srv.FailNext(mews.OpAddKeyCutter, 1, http.StatusTooManyRequests, "")
	if _, err := c.AddKeyCutterCommand(ctx, add); lc.note(err) != nil {
		t.Fatalf("after a 429: %v", err)
	}
	if n := srv.RequestCount(mews.OpAddKeyCutter); n != 3 {
		t.Errorf("%d requests in all, want 3", n)
	}
}

func TestRetryAfter(t *testing.T) {
	for name, header := range map[string]func() string{
		"seconds":   func() string { return "1" },
		"HTTP date": func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) },
	} {
		t.Run(name, func(t *testing.T) {
			lc := newAPILeakCheck(t)
			srv := apiServer(t)
			statuses := make(chan int, 10)
			c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) {
				cfg.OnRequest = func(_ string, status int, _ time.Duration) { statuses <- status }
			})
			ctx := apiContext(t)

			// Either form says: not before one second from now.
			notBefore := time.Now().Add(time.Second)
			srv.FailNext(mews.OpActiveCommands, 1, http.StatusTooManyRequests, header())
			first := make(chan error, 1)
			go func() {
				_, err := c.ActiveCommands(ctx)
				first <- err
			}()
			// A second caller starting after the 429 arrived is held back
			// too: the limit is per access token.
			for status := range statuses {
				if status == http.StatusTooManyRequests {
					break
				}
			}
			_, err := c.Devices(ctx)
			if lc.note(err) != nil {
				t.Fatal(err)
			}
			if err := lc.note(<-first); err != nil {
				t.Fatal(err)
			}

			reqs := srv.Requests()
			if len(reqs) != 3 || reqs[0].Status != http.StatusTooManyRequests {
				t.Fatalf("requests = %+v, want a 429 then two more", reqs)
			}
			for _, r := range reqs[1:] {
				if r.Time.Before(notBefore) {
					t.Errorf("%s sent %s before Retry-After ended", r.Op, notBefore.Sub(r.Time))
				}
			}
		})
	}
}

// TestLimitAcrossCallers: 20 callers share a limit of 10 requests per
// 300ms; the server enforces the same limit and would answer 429.
func TestLimitAcrossCallers(t *testing.T) {
	const limit, window = 10, 300 * time.Millisecond
	lc := newAPILeakCheck(t)
	srv := apiServer(t, mewstest.WithRateLimit(limit, window))
	c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) {
		cfg.RequestLimit, cfg.RequestWindow = limit, window
	})
	ctx := apiContext(t)

	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 20 {
		wg.Go(func() {
			for range 2 {
				_, err := c.ActiveCommands(ctx)
				errs <- lc.note(err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 40 {
		t.Errorf("%d requests, want 40 (a 429 would add retries)", len(reqs))
	}
	checkWindows(t, reqs, limit, window)
}

// checkWindows fails if any window holds more than limit requests.
func checkWindows(t *testing.T, reqs []mewstest.Request, limit int, window time.Duration) {
	t.Helper()
	times := make([]time.Time, len(reqs))
	for i, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			t.Errorf("request %d answered 429", i)
		}
		times[i] = r.Time
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i := 0; i+limit < len(times); i++ {
		if d := times[i+limit].Sub(times[i]); d < window {
			t.Errorf("requests %d..%d within %s: more than %d per %s", i, i+limit, d, limit, window)
		}
	}
}

func TestCancelStopsRetries(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) { cfg.MaxElapsed = time.Minute })
	ctx, cancel := context.WithCancel(apiContext(t))

	srv.FailNext(mews.OpActiveCommands, 1000, http.StatusServiceUnavailable, "")
	done := make(chan error, 1)
	go func() {
		_, err := c.ActiveCommands(ctx)
		done <- err
	}()
	if err := srv.Wait(apiContext(t), func(s *mewstest.Server) bool { return s.RequestCount("") >= 3 }); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := lc.note(<-done)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := srv.RequestCount(""); n > 4 {
		t.Errorf("%d requests: retries went on after the cancel", n)
	}
}

func TestHungRequestBoundedByDeadline(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)

	srv.HangNext(mews.OpActiveCommands, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := c.ActiveCommands(ctx)
	lc.note(err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("returned after %s", d)
	}
}

func TestNetworkErrors(t *testing.T) {
	t.Run("server gone: retried, then a network error", func(t *testing.T) {
		lc := newAPILeakCheck(t)
		srv := mewstest.NewServer()
		srv.Close()
		var mu sync.Mutex
		attempts := 0
		c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) {
			cfg.MaxElapsed = 200 * time.Millisecond
			cfg.OnRequest = func(string, int, time.Duration) { mu.Lock(); attempts++; mu.Unlock() }
		})
		// Even a create is repeated: the connection was never made.
		_, err := c.AddKeyCutterCommand(apiContext(t), mews.AddKeyCutterCommand{KeyCutterID: "d", ReservationID: "r", KeyCount: 1})
		lc.note(err)
		if !errors.Is(err, mews.ErrNetwork) || !mews.Retryable(err) {
			t.Fatalf("err = %v, want a retryable ErrNetwork", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if attempts < 2 {
			t.Errorf("%d attempts, want retries", attempts)
		}
	})
	t.Run("connection lost after sending: a create is not repeated", func(t *testing.T) {
		lc := newAPILeakCheck(t)
		var mu sync.Mutex
		received := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			mu.Lock()
			received++
			mu.Unlock()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		defer srv.Close()
		c, err := mews.NewClient(mews.ClientConfig{APIURL: srv.URL, ClientToken: wireClientToken, AccessToken: wireAccessToken,
			Logger: lc.logger(), RetryInitial: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.AddKeyCutterCommand(apiContext(t), mews.AddKeyCutterCommand{KeyCutterID: "d", ReservationID: "r", KeyCount: 1})
		lc.note(err)
		if !errors.Is(err, mews.ErrNetwork) {
			t.Fatalf("err = %v, want ErrNetwork", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if received != 1 {
			t.Errorf("Mews received the create %d times, want once", received)
		}
	})
}

// The wire format, checked on a bare loopback server: the tokens travel in
// the JSON body only, never in the URL or a header, and an error message
// echoing a token is scrubbed.
const (
	wireClientToken = "wire-client-token-0123456789"
	wireAccessToken = "wire-access-token-9876543210"
)

func TestWireFormat(t *testing.T) {
	lc := newAPILeakCheck(t)
	type seen struct {
		method, path, query, contentType string
		headers                          http.Header
		body                             map[string]any
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(data, &body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Clone(), body}
		w.Header().Set("Request-Id", "req-1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"Message":"Invalid AccessToken %s.","RequestId":"req-1","Details":"%s"}`, wireAccessToken, wireClientToken)
	}))
	defer srv.Close()
	c, err := mews.NewClient(mews.ClientConfig{APIURL: srv.URL + "/", ClientToken: wireClientToken, AccessToken: wireAccessToken,
		Client: "mews-keyd 1.2.3", Logger: lc.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	err = lc.note(c.UpdateCommand(apiContext(t), mews.CommandUpdate{ID: "cmd-1", State: mews.CommandProcessed, Notes: "done"}))
	s := <-got
	if s.method != http.MethodPost || s.path != "/api/connector/v1/commands/update" || s.query != "" || s.contentType != "application/json" {
		t.Errorf("request line %s %s?%s, Content-Type %q", s.method, s.path, s.query, s.contentType)
	}
	want := map[string]any{"ClientToken": wireClientToken, "AccessToken": wireAccessToken, "Client": "mews-keyd 1.2.3",
		"CommandId": "cmd-1", "State": "Processed", "Notes": "done"}
	if fmt.Sprint(s.body) != fmt.Sprint(want) {
		t.Errorf("body = %v, want %v", s.body, want)
	}
	for name, vals := range s.headers {
		if v := strings.Join(vals, ","); strings.Contains(v, wireClientToken) || strings.Contains(v, wireAccessToken) {
			t.Errorf("header %s carries a token", name)
		}
	}
	var apiErr *mews.APIError
	if !errors.As(err, &apiErr) || apiErr.RequestID != "req-1" || !strings.Contains(apiErr.Message, "[redacted]") {
		t.Errorf("err = %#v, want the message with the token cut out", err)
	}
}

// lineWriter hands each log line to a channel, so a test can wait for one.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// TestLongRetryAfter: a 429 with Retry-After: 3600 holds every caller back
// for at most MaxPause, and the call that got it waits no longer either.
func TestLongRetryAfter(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	lines := make(lineWriter, 100)
	c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) {
		cfg.MaxElapsed = 10 * time.Minute
		cfg.Logger = zerolog.New(lines).Level(zerolog.WarnLevel)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	srv.FailNext(mews.OpActiveCommands, 1, http.StatusTooManyRequests, "3600")
	before := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := c.ActiveCommands(ctx)
		done <- err
	}()
	var retry struct {
		Message string  `json:"message"`
		Wait    float64 `json:"wait"` // milliseconds
	}
	for retry.Message != "mews request failed, retrying" {
		select {
		case line := <-lines:
			_ = json.Unmarshal([]byte(line), &retry)
		case err := <-done:
			t.Fatalf("the call returned %v instead of waiting out the pause", lc.note(err))
		}
	}
	after := time.Now()
	if wait := time.Duration(retry.Wait) * time.Millisecond; wait > mews.MaxPause {
		t.Errorf("the call waits %s, want at most %s", wait, mews.MaxPause)
	}
	if until := c.Limiter().PausedUntil(); until.Before(before.Add(mews.MaxPause)) || until.After(after.Add(mews.MaxPause)) {
		t.Errorf("limiter paused until %s from now, want %s", until.Sub(after), mews.MaxPause)
	}
	cancel()
	if err := lc.note(<-done); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want Canceled", err)
	}
}

// TestEmptyIDListsSendNothing: an operation given no ids (nil, empty, or
// only empty strings) answers nothing without asking Mews. Above all, no
// id list may become a reservations/getAll without a filter, which would
// fetch the whole property.
func TestEmptyIDListsSendNothing(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)

	ops := map[string]func(ids []string) (int, error){
		"CommandsByIDs": func(ids []string) (int, error) {
			got, err := c.CommandsByIDs(ctx, ids)
			return len(got), err
		},
		"Reservations by ids": func(ids []string) (int, error) {
			got, err := c.Reservations(ctx, mews.ReservationFilter{IDs: ids})
			return len(got), err
		},
		"Reservations by ids and state": func(ids []string) (int, error) {
			if ids == nil {
				ids = []string{} // nil would be no id filter, rightly sent
			}
			got, err := c.Reservations(ctx, mews.ReservationFilter{IDs: ids, States: []mews.ReservationState{mews.ReservationStarted}})
			return len(got), err
		},
		"Reservations by room": func(ids []string) (int, error) {
			if ids == nil {
				ids = []string{}
			}
			got, err := c.Reservations(ctx, mews.ReservationFilter{AssignedResourceIDs: ids})
			return len(got), err
		},
		"Resources": func(ids []string) (int, error) {
			got, err := c.Resources(ctx, ids)
			return len(got), err
		},
		"Customers": func(ids []string) (int, error) {
			got, err := c.Customers(ctx, ids)
			return len(got), err
		},
		"AccessTokens": func(ids []string) (int, error) {
			got, err := c.AccessTokens(ctx, ids)
			return len(got), err
		},
		"DeleteAccessTokens": func(ids []string) (int, error) {
			return 0, c.DeleteAccessTokens(ctx, ids)
		},
	}
	for name, op := range ops {
		for _, ids := range [][]string{nil, {}, {""}, {"", ""}} {
			t.Run(fmt.Sprintf("%s %#v", name, ids), func(t *testing.T) {
				srv.ResetRequests()
				n, err := op(ids)
				if lc.note(err) != nil || n != 0 {
					t.Errorf("got %d items, err %v; want none", n, err)
				}
				for _, r := range srv.Requests() {
					t.Errorf("sent %s %v", r.Op, r.Body)
				}
			})
		}
	}
	t.Run("Reservations without any filter", func(t *testing.T) {
		srv.ResetRequests()
		rs, err := c.Reservations(ctx, mews.ReservationFilter{})
		if lc.note(err) != nil || len(rs) != 0 {
			t.Errorf("got %d reservations, err %v; want none", len(rs), err)
		}
		for _, r := range srv.Requests() {
			t.Errorf("sent %s %v", r.Op, r.Body)
		}
	})
	t.Run("empty strings are dropped", func(t *testing.T) {
		srv.ResetRequests()
		rs, err := c.Reservations(ctx, mews.ReservationFilter{IDs: []string{"", mewstest.ReservationArriving, ""}})
		if lc.note(err) != nil || len(rs) != 1 {
			t.Fatalf("got %d reservations, err %v; want 1", len(rs), err)
		}
		if reqs := srv.Requests(); len(reqs) != 1 || fmt.Sprint(reqs[0].Body["ReservationIds"]) != fmt.Sprint([]any{mewstest.ReservationArriving}) {
			t.Errorf("requests = %+v, want one for %s alone", reqs, mewstest.ReservationArriving)
		}
	})
}

// TestTimeoutHalvesPage: Mews answers 408 to a request too heavy for it;
// a paginated operation asks again for half as many items a page (down to
// one, which is then retried as is), and still returns every item.
func TestTimeoutHalvesPage(t *testing.T) {
	ids := []string{mewstest.CustomerNovak.ID, mewstest.CustomerAngstrom.ID, mewstest.CustomerMuller.ID,
		mewstest.CustomerDvorakova.ID, mewstest.CustomerOBrien.ID}
	for _, tc := range []struct {
		pageSize, timeouts int
		counts             []float64 // Limitation.Count of each request
	}{
		{4, 1, []float64{4, 2, 2, 2}},
		{4, 3, []float64{4, 2, 1, 1, 1, 1, 1, 1, 1}},
	} {
		t.Run(fmt.Sprintf("%d timeouts at %d a page", tc.timeouts, tc.pageSize), func(t *testing.T) {
			lc := newAPILeakCheck(t)
			srv := apiServer(t)
			c := apiClient(t, srv, lc, func(cfg *mews.ClientConfig) { cfg.PageSize = tc.pageSize })
			srv.FailNext(mews.OpCustomers, tc.timeouts, http.StatusRequestTimeout, "")
			cs, err := c.Customers(apiContext(t), ids)
			if lc.note(err) != nil {
				t.Fatal(err)
			}
			var got []string
			for _, cu := range cs {
				got = append(got, cu.ID)
			}
			if !sameSet(got, ids) {
				t.Errorf("customers %v, want %v", got, ids)
			}
			var counts []float64
			for _, r := range srv.Requests() {
				lim, _ := r.Body["Limitation"].(map[string]any)
				count, _ := lim["Count"].(float64)
				counts = append(counts, count)
			}
			if !slices.Equal(counts, tc.counts) {
				t.Errorf("Limitation.Count of the requests = %v, want %v", counts, tc.counts)
			}
		})
	}
}

// TestWithoutRetriesTriesOnce: `check` asks once and reports what it got,
// rather than retrying for minutes; the same client's other calls retry as
// before.
func TestWithoutRetriesTriesOnce(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)

	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusRequestTimeout} {
		before := srv.RequestCount(mews.OpDevices)
		srv.FailNext(mews.OpDevices, 1, status, "")
		_, err := c.Devices(mews.WithoutRetries(ctx))
		lc.note(err)
		var apiErr *mews.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != status {
			t.Errorf("err = %v, want the %d as it came", err, status)
		}
		if n := srv.RequestCount(mews.OpDevices) - before; n != 1 {
			t.Errorf("status %d: %d requests, want 1", status, n)
		}
	}

	before := srv.RequestCount(mews.OpDevices)
	srv.FailNext(mews.OpDevices, 1, http.StatusServiceUnavailable, "")
	if _, err := c.Devices(ctx); lc.note(err) != nil {
		t.Fatalf("a call with retries: %v", err)
	}
	if n := srv.RequestCount(mews.OpDevices) - before; n != 2 {
		t.Errorf("a call with retries made %d requests, want 2", n)
	}
}

// TestPeopleAndPlaces: the operations digital keys need for the
// reservations real properties have: the companions of a reservation (a
// company-owned one has no other guests), beds with their room, and rooms
// taken out of service, which must still be known.
func TestPeopleAndPlaces(t *testing.T) {
	lc := newAPILeakCheck(t)
	srv := apiServer(t)
	c := apiClient(t, srv, lc, nil)
	ctx := apiContext(t)
	now := time.Now().UTC().Truncate(time.Second)
	const company, res, dorm, bed, closed = "c0ffee00-0000-4000-8000-000000000001", "c0ffee00-0000-4000-8000-000000000002",
		"c0ffee00-0000-4000-8000-000000000003", "c0ffee00-0000-4000-8000-000000000004", "c0ffee00-0000-4000-8000-000000000005"
	srv.AddResource(mews.Resource{ID: dorm, Name: "D1", IsActive: true})
	srv.AddResource(mews.Resource{ID: bed, Name: "D1-A", IsActive: true, ParentResourceID: dorm})
	srv.AddResource(mews.Resource{ID: closed, Name: "113", IsActive: false})
	srv.AddReservation(mews.Reservation{ID: res, Number: "3001", State: mews.ReservationConfirmed, AccountID: company,
		AccountType: mews.AccountCompany, AssignedResourceID: bed, ScheduledStartUtc: now, ScheduledEndUtc: now.Add(24 * time.Hour)})
	first := srv.AddCompanion(res, mewstest.CustomerNovak.ID)
	second := srv.AddCompanion(res, mewstest.CustomerMuller.ID)
	srv.AddCompanion(mewstest.ReservationCheckedIn, mewstest.CustomerGarcia.ID)

	t.Run("company-owned reservation", func(t *testing.T) {
		rs, err := c.Reservations(ctx, mews.ReservationFilter{IDs: []string{res, mewstest.ReservationCheckedIn}})
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		types := map[string]mews.AccountType{}
		for _, r := range rs {
			types[r.ID] = r.AccountType
		}
		if types[res] != mews.AccountCompany || types[mewstest.ReservationCheckedIn] != mews.AccountCustomer {
			t.Errorf("account types %v", types)
		}
		cs, err := c.Customers(ctx, []string{company})
		if lc.note(err) != nil || len(cs) != 0 {
			t.Errorf("customers of a company account: %+v, %v; want none", cs, err)
		}
	})
	t.Run("companionships", func(t *testing.T) {
		got, err := c.Companionships(ctx, []string{res})
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		want := []mews.Companionship{{ID: first, CustomerID: mewstest.CustomerNovak.ID, ReservationID: res},
			{ID: second, CustomerID: mewstest.CustomerMuller.ID, ReservationID: res}}
		if !slices.Equal(got, want) {
			t.Errorf("companionships %+v, want %+v", got, want)
		}
		if got, err := c.Companionships(ctx, nil); err != nil || got != nil || srv.RequestCount(mews.OpCompanionships) != 1 {
			t.Errorf("no ids: %v, %v after %d requests; want nothing asked", got, err, srv.RequestCount(mews.OpCompanionships))
		}
		srv.RemoveCompanion(first)
		if got, err := c.Companionships(ctx, []string{res}); lc.note(err) != nil || len(got) != 1 || got[0].ID != second {
			t.Errorf("after a removal: %+v, %v", got, err)
		}
	})
	t.Run("beds and inactive rooms", func(t *testing.T) {
		srv.ResetRequests()
		rs, err := c.Resources(ctx, []string{bed, closed})
		if lc.note(err) != nil {
			t.Fatal(err)
		}
		byID := map[string]mews.Resource{}
		for _, r := range rs {
			byID[r.ID] = r
		}
		if byID[bed].ParentResourceID != dorm || byID[closed].Name != "113" || byID[closed].IsActive {
			t.Errorf("resources %+v, want the bed with its dorm and the inactive room", rs)
		}
		ext, _ := srv.Requests()[0].Body["Extent"].(map[string]any)
		if ext["Inactive"] != true || ext["Resources"] != true {
			t.Errorf("Extent %v, want resources, inactive ones included", ext)
		}
	})
}
