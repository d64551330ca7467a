package mews

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"time"
)

// Connector API operations (paths after /api/connector/v1/).
const (
	OpActiveCommands     = "commands/getAllActive"
	OpCommandsByIDs      = "commands/getAllByIds"
	OpUpdateCommand      = "commands/update"
	OpAddKeyCutter       = "commands/addKeyCutter"
	OpDevices            = "devices/getAll"
	OpReservations       = "reservations/getAll/2023-06-06"
	OpResources          = "resources/getAll"
	OpCustomers          = "customers/getAll"
	OpCompanionships     = "companionships/getAll"
	OpAddAccessTokens    = "resourceAccessTokens/add"
	OpUpdateAccessTokens = "resourceAccessTokens/update"
	OpDeleteAccessTokens = "resourceAccessTokens/delete"
	OpAccessTokens       = "resourceAccessTokens/getAll"
	maxBatch             = 1000 // ids per request and items per page, Mews's maximum
)

// limitation is Mews's cursor pagination request.
type limitation struct {
	Count  int    `json:"Count"`
	Cursor string `json:"Cursor,omitempty"`
}

// utcSeconds is a time in a request: the Connector API takes
// YYYY-MM-DDThh:mm:ssZ, in UTC and whole seconds, so fractions are cut.
// Every request type holds its times as utcSeconds.
type utcSeconds time.Time

const utcSecondsLayout = "2006-01-02T15:04:05Z"

func (t utcSeconds) MarshalJSON() ([]byte, error) {
	u := time.Time(t).UTC()
	if y := u.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("time %s: year outside 0..9999", u)
	}
	return []byte(`"` + u.Format(utcSecondsLayout) + `"`), nil
}

// ActiveCommands returns the commands in state Pending or Received
// (commands/getAllActive). Fetching them marks Pending ones Received in Mews.
func (c *Client) ActiveCommands(ctx context.Context) ([]Command, error) {
	// The operation documents no Limitation: Mews answers every active
	// command at once.
	var out commandsAnswer
	if err := c.call(ctx, OpActiveCommands, true, nil, &out); err != nil {
		return nil, err
	}
	return utcCommands(out.Commands), nil
}

// CommandsByIDs returns the commands with the given ids
// (commands/getAllByIds), asking at most 1000 ids per request. Unknown ids
// are absent from the result.
func (c *Client) CommandsByIDs(ctx context.Context, ids []string) ([]Command, error) {
	var all []Command
	for chunk := range idChunks(ids) {
		in := struct{ CommandIds []string }{chunk}
		var out commandsAnswer
		if err := c.call(ctx, OpCommandsByIDs, true, in, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Commands...)
	}
	return utcCommands(all), nil
}

// commandsAnswer is the answer of the operations returning commands; each
// command gets the time of the answer by Mews's clock.
type commandsAnswer struct{ Commands []Command }

func (a *commandsAnswer) setServerTime(t time.Time) {
	for i := range a.Commands {
		a.Commands[i].ServerTime = t
	}
}

func utcCommands(cmds []Command) []Command {
	for i := range cmds {
		cmds[i].CreatedUtc = cmds[i].CreatedUtc.UTC()
	}
	return cmds
}

// CommandUpdate is a change of a command's state. Progress is sent only
// with Processing and Notes only with a final state, the only states Mews
// takes them with; otherwise they are dropped.
type CommandUpdate struct {
	ID       string
	State    CommandState
	Progress *float64
	Notes    string
}

// UpdateCommand reports a command's state to Mews (commands/update). A
// retried update that Mews had in fact applied comes back as ErrForbidden
// (a final state cannot change): the caller should then read the command.
func (c *Client) UpdateCommand(ctx context.Context, u CommandUpdate) error {
	in := struct {
		CommandId string
		State     CommandState
		Progress  *float64 `json:",omitempty"`
		Notes     string   `json:",omitempty"`
	}{CommandId: u.ID, State: u.State}
	if u.State == CommandProcessing {
		in.Progress = u.Progress
	}
	if u.State.Final() {
		in.Notes = u.Notes
	}
	return c.call(ctx, OpUpdateCommand, true, in, nil)
}

// AddKeyCutterCommand asks Mews to create a key cutter command, as staff
// pressing "cut key" do.
type AddKeyCutterCommand struct {
	KeyCutterID   string // the device id
	ReservationID string
	KeyCount      int
	EnterpriseID  string // only with portfolio access tokens
}

// AddKeyCutterCommand creates a key cutter command (commands/addKeyCutter)
// and returns its id. It is never repeated once Mews may have received it:
// a duplicate would cut a second card.
func (c *Client) AddKeyCutterCommand(ctx context.Context, a AddKeyCutterCommand) (string, error) {
	in := struct {
		KeyCutterId   string
		ReservationId string
		KeyCount      int
		EnterpriseId  string `json:",omitempty"`
	}{a.KeyCutterID, a.ReservationID, a.KeyCount, a.EnterpriseID}
	var out struct{ CommandId string }
	if err := c.call(ctx, OpAddKeyCutter, false, in, &out); err != nil {
		return "", err
	}
	if out.CommandId == "" {
		return "", fmt.Errorf("mews %s: %w: no CommandId", OpAddKeyCutter, ErrResponse)
	}
	return out.CommandId, nil
}

// Devices returns the devices linked to the integration (devices/getAll).
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out struct{ Devices []Device }
	if err := c.call(ctx, OpDevices, true, nil, &out); err != nil {
		return nil, err
	}
	return out.Devices, nil
}

// ReservationFilter selects reservations; nil and zero fields do not
// filter. A list that is given but names nothing (empty, or only empty
// strings) matches no reservation, and so does a filter without any
// criterion: the whole property is never fetched. Mews takes intervals of
// at most three months.
type ReservationFilter struct {
	IDs         []string
	UpdatedFrom time.Time // reservations changed in [UpdatedFrom, UpdatedTo]
	UpdatedTo   time.Time // zero with UpdatedFrom set: now
	// Reservations scheduled to start in [ScheduledStartFrom,
	// ScheduledStartTo] (Mews's ScheduledStartUtc interval); both or neither.
	ScheduledStartFrom  time.Time
	ScheduledStartTo    time.Time
	States              []ReservationState
	AssignedResourceIDs []string
}

// matchesNothing reports whether f names nothing: sent, it would not
// filter at all.
func (f ReservationFilter) matchesNothing() bool {
	noCriterion := f.IDs == nil && f.AssignedResourceIDs == nil && f.States == nil &&
		f.UpdatedFrom.IsZero() && f.UpdatedTo.IsZero() && f.ScheduledStartFrom.IsZero() && f.ScheduledStartTo.IsZero()
	return noCriterion || namesNothing(f.IDs) || namesNothing(f.AssignedResourceIDs) || (f.States != nil && len(f.States) == 0)
}

// namesNothing reports whether an id list is given (not nil) but holds no
// id.
func namesNothing(ids []string) bool {
	return ids != nil && len(nonEmpty(ids)) == 0
}

// Reservations returns the reservations matching f
// (reservations/getAll/2023-06-06), following every page and splitting an
// id list into requests of at most 1000.
func (c *Client) Reservations(ctx context.Context, f ReservationFilter) ([]Reservation, error) {
	type interval struct {
		StartUtc utcSeconds
		EndUtc   utcSeconds
	}
	type params struct {
		ReservationIds      []string           `json:",omitempty"`
		UpdatedUtc          *interval          `json:",omitempty"`
		ScheduledStartUtc   *interval          `json:",omitempty"`
		States              []ReservationState `json:",omitempty"`
		AssignedResourceIds []string           `json:",omitempty"`
		Limitation          limitation
	}
	base := params{States: f.States, AssignedResourceIds: nonEmpty(f.AssignedResourceIDs)}
	if !f.UpdatedFrom.IsZero() || !f.UpdatedTo.IsZero() {
		to := f.UpdatedTo
		if to.IsZero() {
			to = time.Now()
		}
		base.UpdatedUtc = &interval{utcSeconds(f.UpdatedFrom), utcSeconds(to)}
	}
	if !f.ScheduledStartFrom.IsZero() || !f.ScheduledStartTo.IsZero() {
		base.ScheduledStartUtc = &interval{utcSeconds(f.ScheduledStartFrom), utcSeconds(f.ScheduledStartTo)}
	}
	if f.matchesNothing() {
		return nil, nil
	}
	chunks := slices.Values([][]string{nil}) // no id filter: one request
	if f.IDs != nil {
		chunks = idChunks(f.IDs)
	}
	var all []Reservation
	for chunk := range chunks {
		p := base
		p.ReservationIds = chunk
		page, err := paginate(ctx, c, OpReservations, func(l limitation) any { p.Limitation = l; return p },
			func(r *struct {
				Reservations []Reservation
				Cursor       string
			}) ([]Reservation, string) {
				return r.Reservations, r.Cursor
			})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	for i := range all {
		r := &all[i]
		r.ScheduledStartUtc, r.ScheduledEndUtc = r.ScheduledStartUtc.UTC(), r.ScheduledEndUtc.UTC()
		r.CreatedUtc, r.UpdatedUtc = r.CreatedUtc.UTC(), r.UpdatedUtc.UTC()
		r.ActualStartUtc, r.ActualEndUtc = utcPtr(r.ActualStartUtc), utcPtr(r.ActualEndUtc)
	}
	return all, nil
}

// Resources returns the resources (rooms, beds) with the given ids
// (resources/getAll), inactive ones included: a room taken out of service
// after a guest got its key is still the room the key opens.
func (c *Client) Resources(ctx context.Context, ids []string) ([]Resource, error) {
	var all []Resource
	for chunk := range idChunks(ids) {
		p := struct {
			ResourceIds []string
			Extent      struct{ Resources, Inactive bool }
			Limitation  limitation
		}{ResourceIds: chunk}
		p.Extent.Resources, p.Extent.Inactive = true, true
		page, err := paginate(ctx, c, OpResources, func(l limitation) any { p.Limitation = l; return p },
			func(r *struct {
				Resources []Resource
				Cursor    string
			}) ([]Resource, string) {
				return r.Resources, r.Cursor
			})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	return all, nil
}

// Customers returns the customers (guests) with the given ids
// (customers/getAll).
func (c *Client) Customers(ctx context.Context, ids []string) ([]Customer, error) {
	var all []Customer
	for chunk := range idChunks(ids) {
		p := struct {
			CustomerIds []string
			Extent      struct{ Customers bool }
			Limitation  limitation
		}{CustomerIds: chunk}
		p.Extent.Customers = true
		page, err := paginate(ctx, c, OpCustomers, func(l limitation) any { p.Limitation = l; return p },
			func(r *struct {
				Customers []Customer
				Cursor    string
			}) ([]Customer, string) {
				return r.Customers, r.Cursor
			})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	return all, nil
}

// Companionships returns the people on the given reservations
// (companionships/getAll by ReservationIds).
func (c *Client) Companionships(ctx context.Context, reservationIDs []string) ([]Companionship, error) {
	var all []Companionship
	for chunk := range idChunks(reservationIDs) {
		p := struct {
			ReservationIds []string
			Limitation     limitation
		}{ReservationIds: chunk}
		page, err := paginate(ctx, c, OpCompanionships, func(l limitation) any { p.Limitation = l; return p },
			func(r *struct {
				Companionships []Companionship
				Cursor         string
			}) ([]Companionship, string) {
				return r.Companionships, r.Cursor
			})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	return all, nil
}

// updated is a value in a request as Mews wraps it: {"Value": ...}. In
// updates, null instead means unchanged.
type updated[T any] struct{ Value T }

// permissionsParam is Permissions as Mews takes them in requests.
type permissionsParam struct {
	Bed, Room, Floor, Building updated[bool]
}

func wrapPermissions(p *Permissions) *permissionsParam {
	if p == nil {
		return nil
	}
	var w permissionsParam
	w.Bed.Value, w.Room.Value, w.Floor.Value, w.Building.Value = p.Bed, p.Room, p.Floor, p.Building
	return &w
}

func utcTokens(ts []ResourceAccessToken) []ResourceAccessToken {
	for i := range ts {
		ts[i].ValidityStartUtc, ts[i].ValidityEndUtc = ts[i].ValidityStartUtc.UTC(), ts[i].ValidityEndUtc.UTC()
	}
	return ts
}

// paginate follows Mews's cursor pagination: pages of c.pageSize until one
// comes back short or without a cursor. params builds the request for a
// limitation; items takes a page's items and cursor out of its answer.
// After a 408 the pages are halved, down to one item, for the rest of the
// operation.
func paginate[T, A any](ctx context.Context, c *Client, op string, params func(limitation) any, items func(*A) ([]T, string)) ([]T, error) {
	var all []T
	req := &pageRequest{lim: limitation{Count: c.pageSize}, params: params}
	for {
		var answer A
		if err := c.call(ctx, op, true, req, &answer); err != nil {
			return nil, err
		}
		page, cursor := items(&answer)
		all = append(all, page...)
		if len(page) < req.lim.Count || cursor == "" || cursor == req.lim.Cursor {
			return all, nil
		}
		req.lim.Cursor = cursor
	}
}

// pageRequest is the request for one page, as params builds it.
type pageRequest struct {
	lim    limitation
	params func(limitation) any
}

func (p *pageRequest) MarshalJSON() ([]byte, error) { return json.Marshal(p.params(p.lim)) }

// lighten halves the page size, as Mews asks after a 408.
func (p *pageRequest) lighten() bool {
	if p.lim.Count <= 1 {
		return false
	}
	p.lim.Count /= 2
	return true
}

// idChunks splits an id list into requests of at most maxBatch ids,
// leaving out empty ids. No ids means no request: sent, an empty list
// would be no filter at all.
func idChunks(ids []string) iter.Seq[[]string] {
	return slices.Chunk(nonEmpty(ids), maxBatch)
}

// nonEmpty returns ids without the empty strings, which name nothing.
func nonEmpty(ids []string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "" })
}
