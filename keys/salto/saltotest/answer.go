package saltotest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mews-keyd/mews-keyd/keys/salto"
)

// frame is the answer to m in the given mode, framed.
func (s *Interface) frame(m salto.Message, mode Mode) []byte {
	if mode == ModeGarbage {
		return []byte("\x00garbage\x7f\x02not a Salto message\x03\x0d")
	}
	out := s.answer(m, mode).AppendFrame(nil, !s.opts.NoLRC)
	if mode == ModeBadLRC {
		out[len(out)-1] ^= 0xff
	}
	return out
}

// answer decides what the interface says to m.
func (s *Interface) answer(m salto.Message, mode Mode) salto.Message {
	cmd, count, ok := parseCommand(m.Field(0))
	if !ok || !wellFormed(cmd, m) {
		return salto.Message{"ES"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if mode == ModeError {
		a := salto.Message{s.errCode, m.Field(1)}
		if s.errCode == "EG" {
			a = append(a, s.errText)
		}
		return a
	}
	switch cmd {
	case "CO":
		s.checkedOut[m.Field(2)] = true
		return salto.Message{m.Field(0), m.Field(1)}
	case "CNM", "CCM":
		return salto.Message{m.Field(0), m.Field(1)}
	}
	rooms := m[3:7]
	for _, r := range rooms {
		if r == "" {
			continue
		}
		if cmd == "CC" && s.checkedOut[r] {
			return salto.Message{"EA", m.Field(1)}
		}
		if cmd == "CN" {
			delete(s.checkedOut, r)
		}
	}
	a := salto.Message{m.Field(0), m.Field(1)}
	switch m.Field(15) {
	case "1":
		s.serial += count
		a = append(a, serial(s.serial))
	case "2":
		for range count {
			s.serial++
			a = append(a, serial(s.serial))
		}
	}
	return a
}

func serial(n int) string { return fmt.Sprintf("SN%06d", n) }

// parseCommand splits "CN2" into "CN" and 2; a command without a count
// is for one card.
func parseCommand(f string) (cmd string, count int, ok bool) {
	cmd = strings.TrimRight(f, "0123456789")
	count = 1
	if n := f[len(cmd):]; n != "" {
		var err error
		if count, err = strconv.Atoi(n); err != nil || count < 1 {
			return "", 0, false
		}
	}
	switch cmd {
	case "CN", "CC", "CA", "CO", "CNM", "CCM":
		return cmd, count, true
	}
	return "", 0, false
}

var (
	phone    = regexp.MustCompile(`^(\+|00)[0-9]{6,15}$`)
	dateLong = regexp.MustCompile(`^[0-9]{10}$`)
)

// wellFormed checks the fields of m as Salto would, before it answers ES.
func wellFormed(cmd string, m salto.Message) bool {
	switch cmd {
	case "CO":
		return len(m) == 3 && m[1] == "0" && room(m[2])
	case "CNM", "CCM":
		return len(m) == 15 && phone.MatchString(m[1]) && rooms(m[2:6]) &&
			date(m[8]) && date(m[9]) && len(m[14]) <= 256
	}
	return (len(m) == 16 || len(m) == 17) && m[1] != "" && strings.Contains("ERT", m[2]) && len(m[2]) == 1 &&
		rooms(m[3:7]) && date(m[9]) && date(m[10]) && len(m[11]) <= 24 && strings.Contains("012", m[15]) && len(m[15]) == 1
}

// rooms: the first is set, none is longer than 24 characters.
func rooms(rs []string) bool {
	if rs[0] == "" {
		return false
	}
	for _, r := range rs {
		if len(r) > 24 {
			return false
		}
	}
	return true
}

func room(r string) bool { return r != "" && len(r) <= 24 }

// date accepts hhmmDDMMYY and hhDDMMYY.
func date(d string) bool {
	layout := "15020106"
	if dateLong.MatchString(d) {
		layout = "1504020106"
	}
	_, err := time.Parse(layout, d)
	return err == nil
}
