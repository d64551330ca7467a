// Package fias is the key-encoder driver for lock systems that speak FIAS
// (Fidelio Interface Application Specification) key services over TCP or a
// serial cable. It
// plays the PMS side of the link: KR asks the lock system to cut cards, KD
// invalidates them, KM changes them, and the lock system answers each with KA.
// The driver registers itself as "fias"; the package fiastest holds a lock
// system simulator for tests.
//
// # Link
//
// With address set the driver dials the lock system and reconnects with
// backoff; with listen set it accepts the lock system's connections from the
// addresses in allow_from (loopback by default) and closes others at once;
// with serial set it opens the port and, when it fails or vanishes, opens it
// again on the same backoff. The framing and the link are the same on all
// three.
// On every connection it sends LS; it answers the lock's LS with its own LD,
// LR and LA, and the lock's LD/LR/LA with LA. The link is up at the lock's
// LA; a connection that has not got that far within keepalive is closed, and
// a newer connection replaces the link only when it gets there. After
// keepalive without a record from the lock it sends LS; no answer within
// another keepalive takes the link down. A new encoder of the same name (a
// config reload) takes a listening socket over from the old one, whose
// Close ends its link with LE; the lock system connects again. DR is
// answered with DS and DE (no guest database to resync); LE ends the link.
//
// # Fields
//
// Key records carry only the fields the lock system asked for in its LR for
// the record type, in its order, plus WS and KC; without an LR a default set.
// Values are ASCII: Clean transliterates letters with diacritics and drops
// what has no ASCII form. A room that would lose a character that way ("10|1"
// would become "101", another door) is refused before anything is sent.
//
//	WS      config workstation
//	KC      config encoder_station
//	RN      Request.Rooms (lock-system ids); else LockIDs through Env.Rooms
//	KT      N if Request.NewKey or config always_new_key, else D
//	K#      Request.KeyCount (at least 1)
//	G#      Request.ReservationNumber, else ReservationID
//	GN, GF  Guest.NormalizedLastName/FirstName, else LastName/FirstName
//	GA      ValidFrom as YYMMDD in time_zone (now if unset)
//	GD, DT  ValidUntil as YYMMDD and HHMM (or HH:MM) in time_zone
//	DA, TI  now, YYMMDD and HHMMSS in time_zone
//
// A KA answers our request if KC, WS and G# (leading zeros aside) agree where
// both carry them. AS=OK is success and $1..$4 become RfidTag keys; otherwise
// CT, or a wording of AS, is the receptionist's message. A KR names one room,
// so a request for several rooms sends one KR per room.
package fias
