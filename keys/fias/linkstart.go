package fias

import (
	"strings"
	"time"
)

// handshake is the link-management state of one session.
type handshake struct {
	// awaiting is true while our LS waits for its answer.
	awaiting bool
	// desc collects a link description (LD, LRs) until the LA that ends it.
	desc map[string][]string
}

// handle acts on one record. end reports that the lock system ended the link.
func (l *link) handle(s *session, r Record, h *handshake) (end bool, err error) {
	switch r.Type {
	case "LS":
		// The lock system (re)starts the link and expects our description.
		// The link is up only at the lock's LA, which follows its own
		// description: a key record sent earlier could miss its LR fields.
		for _, rec := range l.description() {
			if _, err := s.send(rec); err != nil {
				return false, err
			}
		}
	case "LD":
		h.desc = map[string][]string{}
		l.log.Info().Str("version", r.Get("V#")).Str("family", r.Get("IF")).Msg("lock system described the link")
	case "LR":
		if h.desc == nil {
			h.desc = map[string][]string{}
		}
		h.desc[r.Get("RI")] = splitIDs(r.Get("FL"))
	case "LA":
		// Answer an LA that completes a link start; a lone LA is the lock's
		// keep-alive, answered only if we have been quiet, so that two sides
		// that both answer every LA cannot ping-pong.
		reply := h.desc != nil || h.awaiting || s.quietFor(l.cfg.Keepalive.D()/2)
		if h.desc != nil {
			s.mu.Lock()
			s.fields = h.desc
			s.mu.Unlock()
			h.desc = nil
		}
		h.awaiting = false
		l.setUp(s)
		if reply {
			if _, err := s.send(l.stamp(NewRecord("LA"))); err != nil {
				return false, err
			}
		}
	case "LE":
		return true, nil
	case "DR":
		// We hold no guest database to resync: an empty swap satisfies it.
		for _, t := range []string{"DS", "DE"} {
			if _, err := s.send(l.stamp(NewRecord(t))); err != nil {
				return false, err
			}
		}
	default:
		l.onRecord(s, r)
	}
	return false, nil
}

// description is our answer to the lock's LS: who we are, which fields we
// read in the records we accept, and LA.
func (l *link) description() []Record {
	return []Record{
		l.stamp(NewRecord("LD", "V#", linkVersion, "IF", linkFamily)),
		NewRecord("LR", "RI", "KA", "FL", "ASCTKCWSG#RN$1$2$3$4DATI"),
		NewRecord("LR", "RI", "DR", "FL", "DATI"),
		l.stamp(NewRecord("LA")),
	}
}

// stamp prepends DA and TI, the record's date and time in property time.
func (l *link) stamp(r Record) Record {
	now := l.now()
	r.Fields = append([]Field{{"DA", now.Format("060102")}, {"TI", now.Format("150405")}}, r.Fields...)
	return r
}

func (l *link) now() time.Time { return time.Now().In(l.loc) }

// splitIDs cuts an LR field list such as "KCKTRNWS" into two-character ids.
func splitIDs(fl string) []string {
	fl = strings.TrimSpace(fl)
	ids := make([]string, 0, len(fl)/2)
	for i := 0; i+2 <= len(fl); i += 2 {
		ids = append(ids, fl[i:i+2])
	}
	return ids
}
