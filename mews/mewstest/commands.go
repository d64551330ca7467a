package mewstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mews-keyd/mews-keyd/mews"
)

// command is a device command and what the simulator remembers about it.
type command struct {
	cmd     mews.Command
	notes   string
	history []mews.CommandState
}

func (c *command) id() string { return c.cmd.ID }

func (c *command) active() bool {
	return c.cmd.State == mews.CommandPending || c.cmd.State == mews.CommandReceived
}

// staff is the Creator of commands made through addKeyCutter, like the
// receptionist who pressed "cut key".
var staff = &mews.Creator{FirstName: "Eva", LastName: "Dvořáková"}

type commandsAnswer struct {
	Commands []mews.Command `json:"Commands"`
	Cursor   *string        `json:"Cursor,omitempty"`
}

// opGetAllActive returns Pending and Received commands. The answer shows the
// state as read; commands read while Pending then become Received, which
// pushes an event like any other change.
func (s *Server) opGetAllActive(body []byte) (any, error) {
	var req struct {
		Limitation *limitation
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, cursor, err := page(s.commands.all(), (*command).id, (*command).active, req.Limitation)
	if err != nil {
		return nil, err
	}
	return commandsAnswer{Commands: s.receiveLocked(got), Cursor: cursor}, nil
}

func (s *Server) opGetAllByIds(body []byte) (any, error) {
	var req struct {
		CommandIds []string
		Limitation *limitation
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.CommandIds) == 0 || len(req.CommandIds) > maxIDs {
		return nil, badRequest("CommandIds must hold 1 to %d ids.", maxIDs)
	}
	wanted := make(map[string]bool, len(req.CommandIds))
	for _, id := range req.CommandIds {
		wanted[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, cursor, err := page(s.commands.all(), (*command).id, func(c *command) bool { return wanted[c.cmd.ID] }, req.Limitation)
	if err != nil {
		return nil, err
	}
	ans := commandsAnswer{Commands: s.receiveLocked(got)}
	if req.Limitation != nil {
		ans.Cursor = cursor
	}
	return ans, nil
}

// receiveLocked snapshots the commands as read and moves the Pending ones to
// Received.
func (s *Server) receiveLocked(cmds []*command) []mews.Command {
	out := make([]mews.Command, len(cmds))
	for i, c := range cmds {
		out[i] = c.cmd
		if c.cmd.State == mews.CommandPending {
			s.setStateLocked(c, mews.CommandReceived)
		}
	}
	return out
}

func (s *Server) opUpdateCommand(body []byte) (any, error) {
	var req struct {
		CommandId string
		State     mews.CommandState
		Progress  *float64
		Notes     *string
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	switch req.State {
	case mews.CommandProcessing, mews.CommandProcessed, mews.CommandCancelled, mews.CommandError:
	default:
		return nil, badRequest("State %q cannot be set by the client.", req.State)
	}
	if req.Progress != nil && req.State != mews.CommandProcessing {
		return nil, badRequest("Progress is only allowed with state Processing.")
	}
	if req.Notes != nil && !req.State.Final() {
		return nil, badRequest("Notes are only allowed with states Processed, Cancelled and Error.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands.get(req.CommandId)
	if !ok {
		return nil, badRequest("Command %q not found.", req.CommandId)
	}
	if c.cmd.State.Final() {
		return nil, &apiError{status: http.StatusForbidden,
			message: fmt.Sprintf("The command is already %s and cannot be changed.", c.cmd.State)}
	}
	if req.Notes != nil {
		c.notes = *req.Notes
	}
	s.setStateLocked(c, req.State)
	return struct{}{}, nil
}

func (s *Server) opAddKeyCutter(body []byte) (any, error) {
	var req struct {
		KeyCutterId   string
		ReservationId string
		KeyCount      int
		EnterpriseId  string
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.addKeyCutterLocked(req.KeyCutterId, req.ReservationId, req.KeyCount)
	if err != nil {
		return nil, err
	}
	return struct {
		CommandId string `json:"CommandId"`
	}{id}, nil
}

// addKeyCutterLocked builds the command Mews would create when staff press
// "cut key": Data from the reservation, its owner and its room.
func (s *Server) addKeyCutterLocked(deviceID, reservationID string, keyCount int) (string, error) {
	dev, ok := s.devices.get(deviceID)
	if !ok || dev.Type != mews.DeviceKeyCutter {
		return "", badRequest("KeyCutterId %q is not a KeyCutter device.", deviceID)
	}
	res, ok := s.reservations.get(reservationID)
	if !ok {
		return "", badRequest("Reservation %q not found.", reservationID)
	}
	if keyCount < 1 {
		return "", badRequest("KeyCount must be at least 1.")
	}
	// Without an assigned room LockIds is empty rather than refused, so
	// clients meet the case and must report it to the receptionist.
	locks := []string{}
	if room, ok := s.resources.get(res.AssignedResourceID); ok {
		locks = append(locks, room.v.Name)
	}
	owner, _ := s.customers.get(res.AccountID)
	guest := owner.v
	settings := s.cutterSettings[dev.ID]
	data := mews.KeyCutterData{
		KeyCutterID:         dev.Identifier,
		APIURL:              settings.APIURL,
		KeyCutterData:       settings.Data,
		KeyCount:            keyCount,
		LockIDs:             locks,
		StartUtc:            res.ScheduledStartUtc,
		EndUtc:              res.ScheduledEndUtc,
		FirstName:           guest.FirstName,
		LastName:            guest.LastName,
		NormalizedFirstName: normalize(guest.FirstName),
		NormalizedLastName:  normalize(guest.LastName),
		Telephone:           guest.Phone,
		Email:               guest.Email,
		ReservationID:       res.ID,
		ReservationNumber:   res.Number,
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return "", err
	}
	return s.createLocked(mews.Command{Creator: staff, Device: dev, Data: raw}), nil
}

// createLocked stores a new Pending command and announces it.
func (s *Server) createLocked(c mews.Command) string {
	if c.ID == "" {
		c.ID = newID()
	}
	if c.CreatedUtc.IsZero() {
		c.CreatedUtc = s.utcNow()
	}
	c.State = mews.CommandPending
	cmd := &command{cmd: c, history: []mews.CommandState{mews.CommandPending}}
	s.commands.put(c.ID, cmd)
	s.pushLocked(commandEvent(cmd))
	s.notifyLocked()
	return c.ID
}

// setStateLocked changes a command's state and announces it, as Mews does
// for every change, including the ones the client made itself.
func (s *Server) setStateLocked(c *command, st mews.CommandState) {
	c.cmd.State = st
	c.history = append(c.history, st)
	s.pushLocked(commandEvent(c))
	s.notifyLocked()
}

func commandEvent(c *command) mews.Event {
	return mews.Event{Type: mews.EventDeviceCommand, ID: c.cmd.ID, State: string(c.cmd.State)}
}

// CreateKeyCutterCommand does what commands/addKeyCutter does and returns
// the new command's id.
func (s *Server) CreateKeyCutterCommand(deviceID, reservationID string, keyCount int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.addKeyCutterLocked(deviceID, reservationID, keyCount)
	if ae := (*apiError)(nil); errors.As(err, &ae) {
		return "", errors.New("mewstest: " + ae.message)
	}
	return id, err
}

// CreateCommand stores c as a new Pending command for any device type, with
// Data as given; Id is generated when empty, CreatedUtc is now when zero.
func (s *Server) CreateCommand(c mews.Command) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createLocked(c)
}

// Command returns the command as it is now.
func (s *Server) Command(id string) (mews.Command, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands.get(id)
	if !ok {
		return mews.Command{}, false
	}
	return c.cmd, true
}

// CommandNotes returns the Notes of the last update that carried some.
func (s *Server) CommandNotes(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.commands.get(id); ok {
		return c.notes
	}
	return ""
}

// SetCommandState changes a command as Mews or staff would (e.g. a cancel
// from the front desk), bypassing the client's state machine; it pushes the
// event. Unknown ids are ignored.
func (s *Server) SetCommandState(id string, st mews.CommandState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.commands.get(id); ok {
		s.setStateLocked(c, st)
	}
}

// StateHistory lists every state the command went through, starting with
// Pending; repeated Processing updates appear each time.
func (s *Server) StateHistory(id string) []mews.CommandState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.commands.get(id); ok {
		return append([]mews.CommandState(nil), c.history...)
	}
	return nil
}

// Commands returns every command in creation order.
func (s *Server) Commands() []mews.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]mews.Command, 0, len(s.commands.ids))
	for _, c := range s.commands.all() {
		out = append(out, c.cmd)
	}
	return out
}

// folds maps the letters with diacritics found in guest names to ASCII, the
// way Mews fills NormalizedFirstName/NormalizedLastName for lock systems
// that only take ASCII.
var folds = func() map[rune]string {
	m := map[rune]string{'ß': "ss", 'Æ': "AE", 'æ': "ae", 'Œ': "OE", 'œ': "oe", 'Þ': "Th", 'þ': "th"}
	for ascii, letters := range map[string]string{
		"A": "ÀÁÂÃÄÅĀĂĄ", "a": "àáâãäåāăą", "C": "ÇĆČ", "c": "çćč", "D": "ĎĐ", "d": "ďđ",
		"E": "ÈÉÊËĒĖĘĚ", "e": "èéêëēėęě", "I": "ÌÍÎÏĪĮ", "i": "ìíîïīįı", "L": "ĹĽŁ", "l": "ĺľł",
		"N": "ÑŃŇ", "n": "ñńň", "O": "ÒÓÔÕÖØŌŐ", "o": "òóôõöøōő", "R": "ŔŘ", "r": "ŕř",
		"S": "ŚŠŞ", "s": "śšş", "T": "ŤŢ", "t": "ťţ", "U": "ÙÚÛÜŪŮŰŲ", "u": "ùúûüūůűų",
		"Y": "ÝŸ", "y": "ýÿ", "Z": "ŹŻŽ", "z": "źżž",
	} {
		for _, r := range letters {
			m[r] = ascii
		}
	}
	return m
}()

func normalize(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch f, ok := folds[r]; {
		case ok:
			b.WriteString(f)
		case r < 128:
			b.WriteRune(r)
		}
	}
	return b.String()
}
