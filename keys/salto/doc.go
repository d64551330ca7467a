// Package salto is the key-encoder driver for Salto's "PMS Industry
// Standard" protocol, which Salto's PC interface (and TESA's HT24) offers a
// PMS over TCP or a serial cable (RS-232, Salto's default). The driver registers itself as "salto"; the package
// saltotest holds a simulated Salto interface for tests.
//
// Salto's specification is not public. What the driver does follows
// ../shared/reference/salto-isp.md: framing, LRC, flow and error codes are
// agreed by every public source; field positions less surely; the date
// format is configurable because the sources disagree.
//
// # Flow
//
// Every request opens a TCP connection of its own, as the production
// clients do, or opens the serial port, and one request runs at a time (on
// a port, one across the encoders of the process too). The driver sends the message
// and waits connect_timeout for ACK. On NAK it sends ENQ (up to 3 times,
// 200ms apart after a NAK) until ACK and sends the message again; after 3
// NAKed sends it fails "Salto interface not ready". After ACK it waits, as
// long as the operation's ctx allows, for the answer, which must echo the
// command and the encoder (or phone), or carry an error code. Before ACK no
// key was made; after it a card may have been (keys.Error.MaybeCut).
//
// # Fields
//
// Values are ASCII (ascii.Clean); a room that would lose a character is
// refused before anything is sent, as are more than 4 rooms and rooms
// longer than 24 characters.
//
//	CN / CC      NewKey: CN (earlier cards stop working), else CC; the card
//	             count is appended when above 1 ("CN2")
//	  1          config encoder, else Request.KeyCutterID
//	  2          eject: R (retain) or E (eject)
//	  3-6        Request.Rooms (else LockIDs through Env.Rooms); unused empty
//	  7, 8       granted and denied authorisations: empty
//	  9, 10      ValidFrom (now if unset) and ValidUntil, date_format in time_zone
//	  11         config operator
//	  12-14      print lines: the normalized guest name, if print_guest_name
//	  15         2: return every card's serial
//	CNM / CCM    with mobile = true: as CN/CC without field 2, the guest's
//	             phone (international, spaces and dashes removed) in
//	             field 1, and mobile_message as field 14
//	CO           Revoke: CO, 0, room; one message per room
//
// Update sends CO for the rooms, then CN. Serials in a successful answer
// (fields 2 on) become the keys, RfidTag for cards and Mobile for mobile
// keys, and are listed in the note.
package salto
