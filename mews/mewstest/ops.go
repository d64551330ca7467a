package mewstest

import (
	"slices"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// interval is Mews's time interval filter.
type interval struct {
	StartUtc *time.Time
	EndUtc   *time.Time
}

// check enforces what Mews enforces on interval filters: both ends, in
// order, at most three months apart.
func (iv *interval) check(name string) error {
	switch {
	case iv.StartUtc == nil || iv.EndUtc == nil:
		return badRequest("%s needs StartUtc and EndUtc.", name)
	case iv.EndUtc.Before(*iv.StartUtc):
		return badRequest("%s ends before it starts.", name)
	case iv.EndUtc.After(iv.StartUtc.AddDate(0, 3, 0)):
		return badRequest("%s is longer than 3 months.", name)
	}
	return nil
}

func (iv *interval) contains(t time.Time) bool {
	return !t.Before(*iv.StartUtc) && !t.After(*iv.EndUtc)
}

// idSet turns an optional id filter into a set; nil means "no filter".
func idSet(name string, ids []string) (map[string]bool, error) {
	if ids == nil {
		return nil, nil
	}
	if len(ids) > maxIDs {
		return nil, badRequest("%s holds more than %d items.", name, maxIDs)
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set, nil
}

// passes reports whether id passes an optional set filter.
func passes(set map[string]bool, id string) bool {
	return set == nil || set[id]
}

func requireLimitation(lim *limitation) error {
	if lim == nil {
		return badRequest("Limitation is required.")
	}
	return nil
}

func (s *Server) opGetDevices([]byte) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return struct {
		Devices []mews.Device `json:"Devices"`
	}{s.devices.all()}, nil
}

func (s *Server) opGetReservations(body []byte) (any, error) {
	var req struct {
		ReservationIds      []string
		UpdatedUtc          *interval
		ScheduledStartUtc   *interval
		States              []mews.ReservationState
		AssignedResourceIds []string
		Limitation          *limitation
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := requireLimitation(req.Limitation); err != nil {
		return nil, err
	}
	if req.UpdatedUtc != nil {
		if err := req.UpdatedUtc.check("UpdatedUtc"); err != nil {
			return nil, err
		}
	}
	if req.ScheduledStartUtc != nil {
		if err := req.ScheduledStartUtc.check("ScheduledStartUtc"); err != nil {
			return nil, err
		}
	}
	ids, err := idSet("ReservationIds", req.ReservationIds)
	if err != nil {
		return nil, err
	}
	rooms, err := idSet("AssignedResourceIds", req.AssignedResourceIds)
	if err != nil {
		return nil, err
	}
	keep := func(r mews.Reservation) bool {
		return passes(ids, r.ID) && passes(rooms, r.AssignedResourceID) &&
			(req.States == nil || slices.Contains(req.States, r.State)) &&
			(req.UpdatedUtc == nil || req.UpdatedUtc.contains(r.UpdatedUtc)) &&
			(req.ScheduledStartUtc == nil || req.ScheduledStartUtc.contains(r.ScheduledStartUtc))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, cursor, err := page(s.reservations.all(), func(r mews.Reservation) string { return r.ID }, keep, req.Limitation)
	if err != nil {
		return nil, err
	}
	return struct {
		Reservations []reservationAnswer `json:"Reservations"`
		Cursor       *string             `json:"Cursor"`
	}{answerAll(got, answerReservation), cursor}, nil
}

func (s *Server) opGetResources(body []byte) (any, error) {
	var req struct {
		ResourceIds []string
		Names       []string
		Extent      *struct{ Resources, Inactive bool }
		Limitation  *limitation
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := requireLimitation(req.Limitation); err != nil {
		return nil, err
	}
	if req.Extent == nil {
		return nil, badRequest("Extent is required.")
	}
	ids, err := idSet("ResourceIds", req.ResourceIds)
	if err != nil {
		return nil, err
	}
	names, err := idSet("Names", req.Names)
	if err != nil {
		return nil, err
	}
	keep := func(rec stamped[mews.Resource]) bool {
		r := rec.v
		return req.Extent.Resources && passes(ids, r.ID) && passes(names, r.Name) && (r.IsActive || req.Extent.Inactive)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, cursor, err := page(s.resources.all(), func(r stamped[mews.Resource]) string { return r.v.ID }, keep, req.Limitation)
	if err != nil {
		return nil, err
	}
	return struct {
		Resources []resourceAnswer `json:"Resources"`
		Cursor    *string          `json:"Cursor"`
	}{answerAll(got, answerResource), cursor}, nil
}

func (s *Server) opGetCustomers(body []byte) (any, error) {
	var req struct {
		CustomerIds []string
		Extent      *struct{ Customers bool }
		Limitation  *limitation
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := requireLimitation(req.Limitation); err != nil {
		return nil, err
	}
	if req.Extent == nil {
		return nil, badRequest("Extent is required.")
	}
	if len(req.CustomerIds) == 0 {
		return nil, badRequest("CustomerIds is required when no other filter is given.")
	}
	ids, err := idSet("CustomerIds", req.CustomerIds)
	if err != nil {
		return nil, err
	}
	keep := func(c stamped[mews.Customer]) bool { return req.Extent.Customers && ids[c.v.ID] }
	s.mu.Lock()
	defer s.mu.Unlock()
	got, cursor, err := page(s.customers.all(), func(c stamped[mews.Customer]) string { return c.v.ID }, keep, req.Limitation)
	if err != nil {
		return nil, err
	}
	return struct {
		Customers []customerAnswer `json:"Customers"`
		Cursor    *string          `json:"Cursor"`
	}{answerAll(got, answerCustomer), cursor}, nil
}

func (s *Server) opGetCompanionships(body []byte) (any, error) {
	var req struct {
		CompanionshipIds    []string
		CustomerIds         []string
		ReservationIds      []string
		ReservationGroupIds []string
		Limitation          *limitation
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := requireLimitation(req.Limitation); err != nil {
		return nil, err
	}
	if req.CustomerIds == nil && req.ReservationIds == nil && req.ReservationGroupIds == nil {
		return nil, badRequest("CustomerIds, ReservationIds or ReservationGroupIds is required.")
	}
	filters := map[string][]string{"CompanionshipIds": req.CompanionshipIds, "CustomerIds": req.CustomerIds,
		"ReservationIds": req.ReservationIds, "ReservationGroupIds": req.ReservationGroupIds}
	sets := map[string]map[string]bool{}
	for name, ids := range filters {
		set, err := idSet(name, ids)
		if err != nil {
			return nil, err
		}
		sets[name] = set
	}
	keep := func(c mews.Companionship) bool {
		return passes(sets["CompanionshipIds"], c.ID) && passes(sets["CustomerIds"], c.CustomerID) &&
			passes(sets["ReservationIds"], c.ReservationID) && passes(sets["ReservationGroupIds"], derivedID("group", c.ReservationID))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, cursor, err := page(s.companions.all(), func(c mews.Companionship) string { return c.ID }, keep, req.Limitation)
	if err != nil {
		return nil, err
	}
	// Customers, Reservations and ReservationGroups come only with an
	// Extent, which the simulator does not offer: null, as Mews answers
	// without one.
	return struct {
		Companionships    []companionshipAnswer `json:"Companionships"`
		Customers         []any                 `json:"Customers"`
		Reservations      []any                 `json:"Reservations"`
		ReservationGroups []any                 `json:"ReservationGroups"`
		Cursor            *string               `json:"Cursor"`
	}{Companionships: answerAll(got, answerCompanionship), Cursor: cursor}, nil
}
