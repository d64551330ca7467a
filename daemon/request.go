package daemon

import (
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// cardRequest turns a key cutter command into an encoder request. Lock ids
// are mapped through [rooms]; ids without a mapping go to the lock system as
// Mews sent them, which is what most installations want (room "101" is lock
// "101").
func cardRequest(cmd *mews.Command, data *mews.KeyCutterData, encoder string, rooms map[string]string, newKey bool) keys.Request {
	mapped := make([]string, len(data.LockIDs))
	for i, id := range data.LockIDs {
		mapped[i] = mapRoom(rooms, id)
	}
	return keys.Request{
		IdempotencyKey:    cmd.ID,
		Encoder:           encoder,
		Kind:              keys.KindCard,
		NewKey:            newKey,
		ReservationID:     data.ReservationID,
		ReservationNumber: data.ReservationNumber,
		Rooms:             mapped,
		LockIDs:           data.LockIDs,
		KeyCount:          data.KeyCount,
		ValidFrom:         data.StartUtc,
		ValidUntil:        data.EndUtc,
		Guest: keys.Guest{
			FirstName:           data.FirstName,
			LastName:            data.LastName,
			NormalizedFirstName: data.NormalizedFirstName,
			NormalizedLastName:  data.NormalizedLastName,
			Email:               data.Email,
			Phone:               data.Telephone,
		},
		APIURL:      data.APIURL,
		CutterData:  data.KeyCutterData,
		KeyCutterID: data.KeyCutterID,
	}
}

func mapRoom(rooms map[string]string, id string) string {
	if r, ok := rooms[id]; ok {
		return r
	}
	return id
}
