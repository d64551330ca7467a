package saltotest

import "time"

// Mode is how the interface answers the messages it does not NAK.
type Mode int

// Modes.
const (
	// ModeOK sends ACK, then the answer: the command and the encoder (or
	// phone) echoed, followed by card serials as the message asked.
	ModeOK Mode = iota
	// ModeError sends ACK, then the error of SetError.
	ModeError
	// ModeNoAck reads the message and sends nothing at all.
	ModeNoAck
	// ModeNoAnswer sends ACK and never an answer, as when nobody presents a
	// card and the interface has no timeout of its own.
	ModeNoAnswer
	// ModeBadLRC sends ACK, then the ModeOK answer with a wrong LRC.
	ModeBadLRC
	// ModeGarbage sends ACK, then bytes that are no message.
	ModeGarbage
	// ModeClose closes the connection when a message arrives, without ACK.
	ModeClose
	// ModeAckClose sends ACK, then closes the connection without answering.
	ModeAckClose
	// ModeAnswerOnly sends the ModeOK answer without an ACK before it.
	ModeAnswerOnly
)

// Writes is how answers are cut into TCP writes.
type Writes int

// Write styles.
const (
	// WritesNormal sends ACK and the answer in a write each.
	WritesNormal Writes = iota
	// WritesSplit sends the answer one byte per write.
	WritesSplit
	// WritesCoalesced holds ACK back and sends it with the answer in one
	// write; with a delay set the ACK is late by that much.
	WritesCoalesced
)

// SetMode sets how messages are answered from now on.
func (s *Interface) SetMode(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}

// SetError sets the answer of ModeError: an error code such as "EP", and
// for "EG" the interface's own text. The default is "OV".
func (s *Interface) SetError(code, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errCode, s.errText = code, text
}

// SetNAK makes the interface answer the next n messages with NAK.
func (s *Interface) SetNAK(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.naks = n
}

// SetBusy makes the interface answer ENQ and every message with NAK, as
// one busy with a previous task does.
func (s *Interface) SetBusy(busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy = busy
}

// SetDelay makes the answer leave d after the ACK, like an encoder waiting
// for a card.
func (s *Interface) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetWrites sets how answers are cut into writes.
func (s *Interface) SetWrites(w Writes) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = w
}
