package mewstest

import (
	"fmt"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// Fixture devices, loaded unless WithoutFixtures.
var (
	KeyCutter1 = mews.Device{ID: "d14efcfd-75b9-4bd3-9f10-5657a01f860a", Type: mews.DeviceKeyCutter,
		Name: "Front desk encoder 1", Identifier: "frontdesk-1"}
	KeyCutter2 = mews.Device{ID: "2b6c1f0e-3c1d-4a53-9d7e-8a4f5e6b7c02", Type: mews.DeviceKeyCutter,
		Name: "Front desk encoder 2", Identifier: "frontdesk-2"}
	Printer1 = mews.Device{ID: "63efb573-fc58-4065-b687-9bdd51568529", Type: mews.DevicePrinter,
		Name: "Front desk printer", Identifier: "printer-1"}
)

// Fixture guests; the names carry diacritics on purpose.
var (
	CustomerNovak     = mews.Customer{ID: "35d4b117-4e60-44a3-9580-c582117eff98", FirstName: "Jan", LastName: "Novák", Email: "jan.novak@example.com", Phone: "+420 601 234 567"}
	CustomerAngstrom  = mews.Customer{ID: "5a8f3e2b-7c14-4d6e-a9b1-0c2d3e4f5a61", FirstName: "Zoë", LastName: "Ångström", Email: "zoe@example.se", Phone: "+46 70 123 45 67"}
	CustomerMuller    = mews.Customer{ID: "6b9a4f3c-8d25-4e7f-b0c2-1d3e4f5a6b72", FirstName: "Jürgen", LastName: "Müller", Email: "j.mueller@example.de"}
	CustomerDvorakova = mews.Customer{ID: "7cab5a4d-9e36-4f80-81d3-2e4f5a6b7c83", FirstName: "Šárka", LastName: "Dvořáková", Phone: "+420 777 888 999"}
	CustomerOBrien    = mews.Customer{ID: "8dbc6b5e-af47-4091-92e4-3f5a6b7c8d94", FirstName: "Siobhán", LastName: "O'Brien", Email: "siobhan@example.ie"}
	CustomerGarcia    = mews.Customer{ID: "9ecd7c6f-b058-41a2-a3f5-4a6b7c8d9ea5", FirstName: "José", LastName: "García Peña"}
)

// Fixture reservations, one per interesting state. Their dates are set
// relative to the server's clock when the fixtures load.
const (
	ReservationCheckedIn  = "be35b39e-ad7e-460a-8de9-4c7581e016a2" // Started, room 101, Novák
	ReservationArriving   = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e01" // Confirmed, room 102, Ångström
	ReservationUnassigned = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e02" // Confirmed, no room, Müller
	ReservationDeparted   = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e03" // Processed, room 103, Dvořáková
	ReservationCanceled   = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e04" // Canceled, room 104, O'Brien
	ReservationLongStay   = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e05" // Started, room 112, García Peña
)

// RoomID returns the fixture resource id of room name ("101".."112").
func RoomID(name string) string {
	return "a0000000-0000-4000-8000-000000000" + name
}

// loadFixtures fills the store; called before the listener starts, so no
// lock and no events.
func (s *Server) loadFixtures() {
	for _, d := range []mews.Device{KeyCutter1, KeyCutter2, Printer1} {
		s.devices.put(d.ID, d)
	}
	day := s.utcNow().Truncate(24 * time.Hour)
	at := func(days, hour int) time.Time { return day.AddDate(0, 0, days).Add(time.Duration(hour) * time.Hour) }
	ptr := func(t time.Time) *time.Time { return &t }
	created := at(-10, 9)
	for n := 101; n <= 112; n++ {
		name := fmt.Sprint(n)
		floor := fmt.Sprintf(`{"Discriminator":"Space","Value":{"FloorNumber":"%d"}}`, n/100)
		putStamped(&s.resources, RoomID(name), mews.Resource{ID: RoomID(name), Name: name, State: "Inspected",
			IsActive: true, Data: []byte(floor)}, at(-400, 9))
	}
	for _, c := range []mews.Customer{CustomerNovak, CustomerAngstrom, CustomerMuller, CustomerDvorakova, CustomerOBrien, CustomerGarcia} {
		putStamped(&s.customers, c.ID, c, created)
	}
	for _, r := range []mews.Reservation{
		{ID: ReservationCheckedIn, Number: "1001", State: mews.ReservationStarted, AccountID: CustomerNovak.ID,
			AssignedResourceID: RoomID("101"), ScheduledStartUtc: at(-1, 14), ActualStartUtc: ptr(at(-1, 15)), ScheduledEndUtc: at(2, 10)},
		{ID: ReservationArriving, Number: "1002", State: mews.ReservationConfirmed, AccountID: CustomerAngstrom.ID,
			AssignedResourceID: RoomID("102"), ScheduledStartUtc: at(0, 14), ScheduledEndUtc: at(3, 10)},
		{ID: ReservationUnassigned, Number: "1003", State: mews.ReservationConfirmed, AccountID: CustomerMuller.ID,
			ScheduledStartUtc: at(1, 14), ScheduledEndUtc: at(4, 10)},
		{ID: ReservationDeparted, Number: "1004", State: mews.ReservationProcessed, AccountID: CustomerDvorakova.ID,
			AssignedResourceID: RoomID("103"), ScheduledStartUtc: at(-3, 14), ActualStartUtc: ptr(at(-3, 16)),
			ScheduledEndUtc: at(0, 10), ActualEndUtc: ptr(at(0, 9))},
		{ID: ReservationCanceled, Number: "1005", State: mews.ReservationCanceled, AccountID: CustomerOBrien.ID,
			AssignedResourceID: RoomID("104"), ScheduledStartUtc: at(2, 14), ScheduledEndUtc: at(5, 10)},
		{ID: ReservationLongStay, Number: "1006", State: mews.ReservationStarted, AccountID: CustomerGarcia.ID,
			AssignedResourceID: RoomID("112"), ScheduledStartUtc: at(-5, 14), ActualStartUtc: ptr(at(-5, 14)), ScheduledEndUtc: at(9, 10)},
	} {
		r.ServiceID = stayServiceID
		r.CreatedUtc, r.UpdatedUtc = created, created
		s.reservations.put(r.ID, r)
	}
}

// stayServiceID is the accommodation service all fixture reservations use.
const stayServiceID = "bd26d8db-86da-4f96-9efc-e5a4654a4a94"

// AddDevice stores or replaces a device. Like Mews, connected sockets learn
// of it only after they reconnect: no event.
func (s *Server) AddDevice(d mews.Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devices.put(d.ID, d)
	s.notifyLocked()
}

// KeyCutterSettings are what a key cutter integration in Mews holds for a
// key cutter: the lock server's API URL and the Data JSON (a string, e.g.
// `{"Type": "FiasProtocol"}`).
type KeyCutterSettings struct {
	APIURL string
	Data   string
}

// SetKeyCutterSettings makes every later command of the key cutter
// deviceID carry these settings (ApiUrl, KeyCutterData).
func (s *Server) SetKeyCutterSettings(deviceID string, set KeyCutterSettings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cutterSettings == nil {
		s.cutterSettings = map[string]KeyCutterSettings{}
	}
	s.cutterSettings[deviceID] = set
}

// AddResource stores or replaces a resource (no event), updated now.
func (s *Server) AddResource(r mews.Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	putStamped(&s.resources, r.ID, r, s.utcNow())
	s.notifyLocked()
}

// AddCustomer stores or replaces a customer, updated now.
func (s *Server) AddCustomer(c mews.Customer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	putStamped(&s.customers, c.ID, c, s.utcNow())
	s.notifyLocked()
}

// AddReservation stores or replaces a reservation as given, without an
// event; CreatedUtc and UpdatedUtc default to now.
func (s *Server) AddReservation(r mews.Reservation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.CreatedUtc.IsZero() {
		r.CreatedUtc = s.utcNow()
	}
	if r.UpdatedUtc.IsZero() {
		r.UpdatedUtc = r.CreatedUtc
	}
	s.reservations.put(r.ID, r)
	s.notifyLocked()
}

// UpdateReservation changes a reservation with f, bumps UpdatedUtc and
// pushes a Reservation event. Unknown ids are ignored.
func (s *Server) UpdateReservation(id string, f func(*mews.Reservation)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reservations.get(id)
	if !ok {
		return
	}
	f(&r)
	r.ID = id
	s.reservations.put(id, r)
	s.touchLocked(id)
}

// touchLocked bumps a reservation's UpdatedUtc and pushes its event.
func (s *Server) touchLocked(id string) {
	r, _ := s.reservations.get(id)
	r.UpdatedUtc = s.utcNow()
	s.reservations.put(id, r)
	start, end := r.ScheduledStartUtc, r.ScheduledEndUtc
	s.pushLocked(mews.Event{Type: mews.EventReservation, ID: id, State: string(r.State),
		StartUtc: &start, EndUtc: &end, AssignedResourceID: r.AssignedResourceID})
	s.notifyLocked()
}

// AddCompanion puts a customer on a reservation and returns the
// companionship's id. Like any change of the reservation it bumps
// UpdatedUtc and pushes a Reservation event. Unknown reservations are
// ignored (and get no companionship).
func (s *Server) AddCompanion(reservationID, customerID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.reservations.get(reservationID); !ok {
		return ""
	}
	c := mews.Companionship{ID: newID(), CustomerID: customerID, ReservationID: reservationID}
	s.companions.put(c.ID, c)
	s.touchLocked(reservationID)
	return c.ID
}

// RemoveCompanion takes a companion off their reservation, a change of
// the reservation like AddCompanion.
func (s *Server) RemoveCompanion(companionshipID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.companions.get(companionshipID)
	if !ok {
		return
	}
	s.companions.remove(companionshipID)
	s.touchLocked(c.ReservationID)
}

// Reservation returns a reservation as it is now.
func (s *Server) Reservation(id string) (mews.Reservation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reservations.get(id)
}
