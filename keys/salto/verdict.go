package salto

import (
	"strings"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/keys/internal/ascii"
)

// verdict returns nil when ans reports that sent succeeded, and otherwise
// the error for the receptionist. An error code is Salto saying it made
// nothing; an answer that is neither an error code nor sent's echo leaves
// open what happened.
func verdict(sent, ans Message, rooms []string) error {
	code := strings.TrimSpace(ans.Field(0))
	if msg, ok := refusal(code, ans, rooms); ok {
		return &keys.Error{Msg: msg}
	}
	if !echoes(sent, ans) {
		return &keys.Error{Msg: "Salto gave an answer that does not match the request", MaybeCut: true}
	}
	return nil
}

// echoes reports whether ans repeats the command of sent (with or without
// its card count) and its encoder or phone. A CO carries no encoder, so
// only its command is compared.
func echoes(sent, ans Message) bool {
	cmd := strings.TrimSpace(ans.Field(0))
	if cmd != sent[0] && cmd != strings.TrimRight(sent[0], "0123456789") {
		return false
	}
	return sent[0] == "CO" || strings.EqualFold(strings.TrimSpace(ans.Field(1)), sent.Field(1))
}

// refusal words an error code for the receptionist; ok is false when code
// is none.
func refusal(code string, ans Message, rooms []string) (msg string, ok bool) {
	switch code {
	case "ES":
		return "Salto did not understand the request", true
	case "NC":
		return "Salto cannot reach the encoder: check that it is switched on and connected", true
	case "NF":
		return "Salto's database files are damaged or missing: call Salto support", true
	case "OV":
		return "the encoder is busy; try again in a moment", true
	case "EP":
		return "no card in the encoder, or it is inserted wrongly", true
	case "EF":
		return "the card was made by another system or is damaged: use another card", true
	case "TD":
		return roomsAre(rooms, "unknown to Salto"), true
	case "ED":
		return "no card was inserted in time", true
	case "EA":
		return "the room is checked out in Salto: cut a new key instead of a copy", true
	case "OS":
		return roomsAre(rooms, "out of service in Salto"), true
	case "EO":
		return "the card is being encoded at another station", true
	case "EV":
		return "the card belongs to a staff member: use a guest card", true
	case "EG":
		if text := strings.TrimSpace(ascii.FromLatin1(ans.Field(2))); text != "" {
			return "Salto: " + text, true
		}
		return "Salto reported an error without saying which", true
	}
	return "", false
}

// roomsAre says what is wrong with the room, or with one of the rooms:
// Salto does not say which.
func roomsAre(rooms []string, what string) string {
	if len(rooms) == 1 {
		return "room " + rooms[0] + " is " + what
	}
	return "one of the rooms " + strings.Join(rooms, ", ") + " is " + what
}
