package status

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Fetch reads /healthz from a running daemon's status_listen address. A
// degraded daemon answers 503 with the same body; that is not an error.
func Fetch(ctx context.Context, addr string) (Snapshot, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Snapshot{}, fmt.Errorf("status address %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Snapshot{}, fmt.Errorf("fetch status: %w", err)
	}
	// The daemon is local: no proxy, and no idle connection left behind.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return Snapshot{}, fmt.Errorf("fetch status (is mews-keyd running with status_listen = %q?): %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return Snapshot{}, fmt.Errorf("fetch status from %s: HTTP %d", url, resp.StatusCode)
	}
	var snap Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return Snapshot{}, fmt.Errorf("fetch status from %s: %w", url, err)
	}
	return snap, nil
}

// Summary renders a snapshot for an operator's terminal.
func Summary(s Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status:    %s\n", s.Status)
	for _, r := range s.Reasons {
		fmt.Fprintf(&b, "           - %s\n", r)
	}
	if s.Version != "" {
		fmt.Fprintf(&b, "version:   %s\n", s.Version)
	}
	ws := "disconnected"
	if s.WebSocket.Connected {
		ws = "connected"
	}
	if !s.WebSocket.Since.IsZero() {
		ws += " since " + s.WebSocket.Since.Local().Format(time.DateTime)
	}
	if s.WebSocket.LastEventAgeSeconds >= 0 {
		ws += fmt.Sprintf(", last event %s ago", roundAge(s.WebSocket.LastEventAgeSeconds))
	} else {
		ws += ", no event yet"
	}
	fmt.Fprintf(&b, "mews:      %s\n", ws)
	for _, e := range s.Encoders {
		state := "ok"
		if !e.OK {
			state = "FAILING: " + orUnknown(e.Detail)
		}
		if !e.Since.IsZero() {
			state += " (since " + e.Since.Local().Format(time.DateTime) + ")"
		}
		if e.Queue > 0 {
			state += fmt.Sprintf(", %d card(s) queued", e.Queue)
		}
		fmt.Fprintf(&b, "encoder:   %s %s\n", e.Name, state)
	}
	journal := "ok"
	if !s.Journal.OK {
		journal = "FAILING: " + orUnknown(s.Journal.Detail)
	}
	fmt.Fprintf(&b, "journal:   %s, %d open command(s)\n", journal, s.Journal.OpenCommands)
	fmt.Fprintf(&b, "outbox:    %d update(s) waiting for Mews", s.OutboxDepth)
	if s.OutboxRefused > 0 {
		fmt.Fprintf(&b, ", %d of them refused by Mews", s.OutboxRefused)
	}
	b.WriteString("\n")
	return b.String()
}

func roundAge(seconds float64) time.Duration {
	return time.Duration(seconds * float64(time.Second)).Round(time.Second)
}
