package mews

import (
	"context"
	"slices"
	"time"
)

// AddAccessTokens records issued keys in Mews (resourceAccessTokens/add)
// and returns them with their Mews ids. Only the fields Mews accepts on
// creation are sent: ServiceOrderID, ResourceID, CompanionshipID, Type,
// Value, SerialNumber, the validity and Permissions (room only when nil: Mews requires them).
// Like AddKeyCutterCommand it is never repeated once Mews may have received
// it, so a key is never recorded twice.
func (c *Client) AddAccessTokens(ctx context.Context, tokens []ResourceAccessToken) ([]ResourceAccessToken, error) {
	type param struct {
		ServiceOrderId   string
		ResourceId       string `json:",omitempty"`
		CompanionshipId  string `json:",omitempty"`
		Value            string
		Type             AccessTokenType
		SerialNumber     string `json:",omitempty"`
		ValidityStartUtc utcSeconds
		ValidityEndUtc   utcSeconds
		Permissions      *permissionsParam
	}
	var all []ResourceAccessToken
	for chunk := range slices.Chunk(tokens, maxBatch) {
		in := struct{ ResourceAccessTokenParameters []param }{make([]param, len(chunk))}
		for i, t := range chunk {
			perm := Permissions{Room: true}
			if t.Permissions != nil {
				perm = *t.Permissions
			}
			in.ResourceAccessTokenParameters[i] = param{
				t.ServiceOrderID, t.ResourceID, t.CompanionshipID, t.Value, t.Type, t.SerialNumber,
				utcSeconds(t.ValidityStartUtc), utcSeconds(t.ValidityEndUtc), wrapPermissions(&perm),
			}
		}
		var out struct{ ResourceAccessTokens []ResourceAccessToken }
		if err := c.call(ctx, OpAddAccessTokens, false, in, &out); err != nil {
			return nil, err
		}
		all = append(all, out.ResourceAccessTokens...)
	}
	return utcTokens(all), nil
}

// AccessTokenUpdate changes a recorded key; nil fields stay as they are.
type AccessTokenUpdate struct {
	ID               string
	Value            *string
	ValidityStartUtc *time.Time
	ValidityEndUtc   *time.Time
	Permissions      *Permissions
}

// UpdateAccessTokens changes recorded keys (resourceAccessTokens/update)
// and returns them as Mews now has them.
func (c *Client) UpdateAccessTokens(ctx context.Context, updates []AccessTokenUpdate) ([]ResourceAccessToken, error) {
	type param struct {
		ResourceAccessTokenId string
		ValidityStartUtc      *updated[utcSeconds] `json:",omitempty"`
		ValidityEndUtc        *updated[utcSeconds] `json:",omitempty"`
		Value                 *updated[string]     `json:",omitempty"`
		Permissions           *permissionsParam    `json:",omitempty"`
	}
	timeValue := func(t *time.Time) *updated[utcSeconds] {
		if t == nil {
			return nil
		}
		return &updated[utcSeconds]{utcSeconds(*t)}
	}
	var all []ResourceAccessToken
	for chunk := range slices.Chunk(updates, maxBatch) {
		in := struct{ ResourceAccessTokenUpdates []param }{make([]param, len(chunk))}
		for i, u := range chunk {
			p := param{
				ResourceAccessTokenId: u.ID,
				ValidityStartUtc:      timeValue(u.ValidityStartUtc),
				ValidityEndUtc:        timeValue(u.ValidityEndUtc),
				Permissions:           wrapPermissions(u.Permissions),
			}
			if u.Value != nil {
				p.Value = &updated[string]{*u.Value}
			}
			in.ResourceAccessTokenUpdates[i] = p
		}
		var out struct{ ResourceAccessTokens []ResourceAccessToken }
		if err := c.call(ctx, OpUpdateAccessTokens, true, in, &out); err != nil {
			return nil, err
		}
		all = append(all, out.ResourceAccessTokens...)
	}
	return utcTokens(all), nil
}

// DeleteAccessTokens removes recorded keys by their Mews ids
// (resourceAccessTokens/delete).
func (c *Client) DeleteAccessTokens(ctx context.Context, ids []string) error {
	for chunk := range idChunks(ids) {
		if err := c.call(ctx, OpDeleteAccessTokens, true, struct{ Ids []string }{chunk}, nil); err != nil {
			return err
		}
	}
	return nil
}

// AccessTokens returns the keys recorded for the given reservations
// (resourceAccessTokens/getAll by ServiceOrderIds).
func (c *Client) AccessTokens(ctx context.Context, serviceOrderIDs []string) ([]ResourceAccessToken, error) {
	var all []ResourceAccessToken
	for chunk := range idChunks(serviceOrderIDs) {
		p := struct {
			ServiceOrderIds []string
			Limitation      limitation
		}{ServiceOrderIds: chunk}
		page, err := paginate(ctx, c, OpAccessTokens, func(l limitation) any { p.Limitation = l; return p },
			func(r *struct {
				ResourceAccessTokens []ResourceAccessToken
				Cursor               string
			}) ([]ResourceAccessToken, string) {
				return r.ResourceAccessTokens, r.Cursor
			})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	return utcTokens(all), nil
}
