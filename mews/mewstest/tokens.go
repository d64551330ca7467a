package mewstest

import (
	"slices"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// EnterpriseID is the one property the simulated access token covers.
const EnterpriseID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

// tokenRecord is a resource access token and its bookkeeping. Deleting
// keeps the record, inactive, as Mews does (ActivityStates "Deleted").
type tokenRecord struct {
	tok     mews.ResourceAccessToken
	created time.Time
	updated time.Time
}

func (r *tokenRecord) id() string { return r.tok.ID }

// tokenJSON is the documented answer shape: IsActive and Permissions are
// always present, plus the timestamps.
type tokenJSON struct {
	mews.ResourceAccessToken
	IsActive    bool             `json:"IsActive"`
	Permissions mews.Permissions `json:"Permissions"`
	CreatedUtc  time.Time        `json:"CreatedUtc"`
	UpdatedUtc  time.Time        `json:"UpdatedUtc"`
}

func (r *tokenRecord) answer() tokenJSON {
	j := tokenJSON{ResourceAccessToken: r.tok, IsActive: r.tok.IsActive, CreatedUtc: r.created, UpdatedUtc: r.updated}
	if r.tok.Permissions != nil {
		j.Permissions = *r.tok.Permissions
	}
	return j
}

type tokensAnswer struct {
	ResourceAccessTokens []tokenJSON `json:"ResourceAccessTokens"`
}

func answerTokens(recs []*tokenRecord) tokensAnswer {
	out := tokensAnswer{ResourceAccessTokens: make([]tokenJSON, len(recs))}
	for i, r := range recs {
		out.ResourceAccessTokens[i] = r.answer()
	}
	return out
}

// boolValue and friends are Mews's "update value" wrappers.
type (
	boolValue   struct{ Value bool }
	timeValue   struct{ Value time.Time }
	stringValue struct{ Value string }
)

type permissionsParam struct {
	Bed, Room, Floor, Building *boolValue
}

// apply sets the permissions that are given and keeps the others.
func (p *permissionsParam) apply(to *mews.Permissions) {
	for _, f := range []struct {
		in  *boolValue
		out *bool
	}{{p.Bed, &to.Bed}, {p.Room, &to.Room}, {p.Floor, &to.Floor}, {p.Building, &to.Building}} {
		if f.in != nil {
			*f.out = f.in.Value
		}
	}
}

func (s *Server) opAddTokens(body []byte) (any, error) {
	var req struct {
		ResourceAccessTokenParameters []struct {
			ServiceOrderId   string
			ResourceId       string
			CompanionshipId  string
			Type             mews.AccessTokenType
			Value            string
			SerialNumber     *string
			ValidityStartUtc time.Time
			ValidityEndUtc   time.Time
			Permissions      *permissionsParam
		}
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	params := req.ResourceAccessTokenParameters
	if len(params) == 0 || len(params) > maxIDs {
		return nil, badRequest("ResourceAccessTokenParameters must hold 1 to %d items.", maxIDs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Validate all first: Mews adds all or nothing.
	for _, p := range params {
		if _, ok := s.reservations.get(p.ServiceOrderId); !ok {
			return nil, badRequest("Reservation %q not found.", p.ServiceOrderId)
		}
		if _, ok := s.resources.get(p.ResourceId); p.ResourceId != "" && !ok {
			return nil, badRequest("Resource %q not found.", p.ResourceId)
		}
		if c, ok := s.companions.get(p.CompanionshipId); p.CompanionshipId != "" && (!ok || c.ReservationID != p.ServiceOrderId) {
			return nil, badRequest("Companionship %q not found on reservation %q.", p.CompanionshipId, p.ServiceOrderId)
		}
		if p.Type != mews.AccessTokenPinCode && p.Type != mews.AccessTokenRfidTag {
			return nil, badRequest("Invalid resource access token type %q.", p.Type)
		}
		if p.Value == "" || len(p.Value) > 255 {
			return nil, badRequest("Value must hold 1 to 255 characters.")
		}
		if !p.ValidityEndUtc.After(p.ValidityStartUtc) {
			return nil, badRequest("ValidityEndUtc must be after ValidityStartUtc.")
		}
	}
	now := s.utcNow()
	added := make([]*tokenRecord, 0, len(params))
	for _, p := range params {
		perms := &mews.Permissions{}
		if p.Permissions != nil {
			p.Permissions.apply(perms)
		}
		rec := &tokenRecord{created: now, updated: now, tok: mews.ResourceAccessToken{
			ID: newID(), EnterpriseID: EnterpriseID, ServiceOrderID: p.ServiceOrderId, ResourceID: p.ResourceId,
			CompanionshipID: p.CompanionshipId, Type: p.Type, Value: p.Value, ValidityStartUtc: p.ValidityStartUtc.UTC(), ValidityEndUtc: p.ValidityEndUtc.UTC(),
			Permissions: perms, IsActive: true,
		}}
		if p.SerialNumber != nil {
			rec.tok.SerialNumber = *p.SerialNumber
		}
		s.tokens.put(rec.tok.ID, rec)
		added = append(added, rec)
	}
	if s.reverseAdded {
		slices.Reverse(added)
	}
	s.notifyLocked()
	return answerTokens(added), nil
}

func (s *Server) opUpdateTokens(body []byte) (any, error) {
	var req struct {
		ResourceAccessTokenUpdates []struct {
			ResourceAccessTokenId string
			ValidityStartUtc      *timeValue
			ValidityEndUtc        *timeValue
			Value                 *stringValue
			Permissions           *permissionsParam
		}
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.ResourceAccessTokenUpdates) > maxIDs {
		return nil, badRequest("ResourceAccessTokenUpdates holds more than %d items.", maxIDs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Work on copies so a bad update leaves every token as it was.
	changed := make([]*tokenRecord, 0, len(req.ResourceAccessTokenUpdates))
	for _, u := range req.ResourceAccessTokenUpdates {
		rec, ok := s.tokens.get(u.ResourceAccessTokenId)
		if !ok || !rec.tok.IsActive {
			return nil, badRequest("Resource access token %q not found.", u.ResourceAccessTokenId)
		}
		c := *rec
		perms := *c.tok.Permissions
		c.tok.Permissions = &perms
		if u.ValidityStartUtc != nil {
			c.tok.ValidityStartUtc = u.ValidityStartUtc.Value.UTC()
		}
		if u.ValidityEndUtc != nil {
			c.tok.ValidityEndUtc = u.ValidityEndUtc.Value.UTC()
		}
		if u.Value != nil {
			if u.Value.Value == "" || len(u.Value.Value) > 255 {
				return nil, badRequest("Value must hold 1 to 255 characters.")
			}
			c.tok.Value = u.Value.Value
		}
		if u.Permissions != nil {
			u.Permissions.apply(c.tok.Permissions)
		}
		if !c.tok.ValidityEndUtc.After(c.tok.ValidityStartUtc) {
			return nil, badRequest("ValidityEndUtc must be after ValidityStartUtc.")
		}
		c.updated = s.utcNow()
		changed = append(changed, &c)
	}
	for _, c := range changed {
		s.tokens.put(c.tok.ID, c)
	}
	s.notifyLocked()
	return answerTokens(changed), nil
}

func (s *Server) opDeleteTokens(body []byte) (any, error) {
	var req struct {
		Ids []string
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.Ids) == 0 || len(req.Ids) > maxIDs {
		return nil, badRequest("Ids must hold 1 to %d items.", maxIDs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range req.Ids {
		if rec, ok := s.tokens.get(id); !ok || !rec.tok.IsActive {
			return nil, badRequest("Resource access token %q not found.", id)
		}
	}
	now := s.utcNow()
	for _, id := range req.Ids {
		rec, _ := s.tokens.get(id)
		c := *rec
		c.tok.IsActive = false
		c.updated = now
		s.tokens.put(id, &c)
	}
	s.notifyLocked()
	return struct{}{}, nil
}

func (s *Server) opGetTokens(body []byte) (any, error) {
	var req struct {
		ResourceAccessTokenIds []string
		ServiceOrderIds        []string
		ActivityStates         []string
		Limitation             *limitation
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := requireLimitation(req.Limitation); err != nil {
		return nil, err
	}
	if req.ResourceAccessTokenIds == nil && req.ServiceOrderIds == nil {
		return nil, badRequest("ResourceAccessTokenIds or ServiceOrderIds is required.")
	}
	ids, err := idSet("ResourceAccessTokenIds", req.ResourceAccessTokenIds)
	if err != nil {
		return nil, err
	}
	orders, err := idSet("ServiceOrderIds", req.ServiceOrderIds)
	if err != nil {
		return nil, err
	}
	states := req.ActivityStates
	if states == nil {
		states = []string{"Active"}
	}
	keep := func(r *tokenRecord) bool {
		state := "Deleted"
		if r.tok.IsActive {
			state = "Active"
		}
		return passes(ids, r.tok.ID) && passes(orders, r.tok.ServiceOrderID) && slices.Contains(states, state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, cursor, err := page(s.tokens.all(), (*tokenRecord).id, keep, req.Limitation)
	if err != nil {
		return nil, err
	}
	return struct {
		tokensAnswer
		Cursor *string `json:"Cursor"`
	}{answerTokens(got), cursor}, nil
}

// ReverseAddedTokens makes resourceAccessTokens/add answer the tokens in
// the reverse of the request's order (or in order again): Mews does not
// document that the answer keeps the order, so clients must pair by value.
func (s *Server) ReverseAddedTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reverseAdded = on
}

// AccessTokens returns every resource access token in creation order,
// deleted ones included with IsActive false.
func (s *Server) AccessTokens() []mews.ResourceAccessToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := s.tokens.all()
	out := make([]mews.ResourceAccessToken, len(recs))
	for i, r := range recs {
		out[i] = r.tok
		if r.tok.Permissions != nil {
			p := *r.tok.Permissions
			out[i].Permissions = &p
		}
	}
	return out
}
