package daemon

import (
	"context"
	"errors"
	"slices"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/daemon/digitalkeys"
	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// writeBack records digital keys in Mews as resource access tokens so staff
// see them on the reservation: added when issued, their validity changed
// when only the dates change, replaced when the room or the key changes,
// deleted when revoked. It returns the keys with the token ids Mews gave
// them. Failures are logged and never undo the key: the guest's door matters
// more than the record.
func (d *Daemon) writeBack(ctx context.Context, reservation string, act digitalkeys.Action,
	prev, grant digitalkeys.Grant, old, cur []digitalKey, log zerolog.Logger) []digitalKey {
	cur = slices.Clone(cur)
	if act == digitalkeys.Revoke {
		if d.deleteTokens(ctx, old, log) {
			return nil
		}
		return old
	}
	if act == digitalkeys.Update && prev.Room == grant.Room && sameKeys(old, cur) {
		kept := slices.Clone(old)
		d.updateTokenValidity(ctx, kept, grant, log)
		return kept
	}
	if !d.deleteTokens(ctx, old, log) {
		log.Warn().Msg("Mews still shows the replaced digital key")
	}
	for i := range cur {
		cur[i].Token = ""
	}
	return d.addTokens(ctx, reservation, grant, cur, log)
}

// tokenOf maps a key onto what Mews can record. Mews knows PIN codes and
// RFID tags only. A mobile key is a credential held in the lock vendor's
// app; like an RFID tag's number, its id identifies it without opening
// anything, so it is recorded as an RfidTag carrying the key's id (its
// value only when there is no id): the secret of a mobile key never goes to
// Mews.
func tokenOf(k digitalKey) (mews.AccessTokenType, string) {
	switch k.Type {
	case keys.KeyPinCode:
		return mews.AccessTokenPinCode, k.Value
	case keys.KeyRfidTag:
		return mews.AccessTokenRfidTag, k.Value
	default:
		if k.ID != "" {
			return mews.AccessTokenRfidTag, k.ID
		}
		return mews.AccessTokenRfidTag, k.Value
	}
}

func (d *Daemon) addTokens(ctx context.Context, reservation string, g digitalkeys.Grant, ks []digitalKey, log zerolog.Logger) []digitalKey {
	var tokens []mews.ResourceAccessToken
	var index []int // tokens[i] records ks[index[i]]
	for i, k := range ks {
		typ, value := tokenOf(k)
		if value == "" {
			continue
		}
		tokens = append(tokens, mews.ResourceAccessToken{
			ServiceOrderID: reservation, ResourceID: g.Room, Type: typ, Value: value, SerialNumber: k.ID,
			ValidityStartUtc: g.From, ValidityEndUtc: g.Until,
		})
		index = append(index, i)
	}
	if len(tokens) == 0 {
		return ks
	}
	added, err := d.api.AddAccessTokens(ctx, tokens)
	if err != nil {
		// Not retried: Mews may have recorded them, and a key must not
		// show twice.
		log.Warn().Err(err).Msg("recording the digital key in Mews failed; staff will not see it there")
		return ks
	}
	for i, t := range added {
		if i < len(index) {
			ks[index[i]].Token = t.ID
		}
	}
	return ks
}

func (d *Daemon) updateTokenValidity(ctx context.Context, ks []digitalKey, g digitalkeys.Grant, log zerolog.Logger) {
	var updates []mews.AccessTokenUpdate
	for _, k := range ks {
		if k.Token != "" {
			updates = append(updates, mews.AccessTokenUpdate{ID: k.Token, ValidityStartUtc: &g.From, ValidityEndUtc: &g.Until})
		}
	}
	if len(updates) == 0 {
		return
	}
	if _, err := d.api.UpdateAccessTokens(ctx, updates); err != nil {
		log.Warn().Err(err).Msg("changing the digital key's dates in Mews failed; Mews shows the old dates")
	}
}

// deleteTokens reports whether Mews no longer shows the keys. A token Mews
// does not know (deleted by staff) counts as deleted.
func (d *Daemon) deleteTokens(ctx context.Context, ks []digitalKey, log zerolog.Logger) bool {
	var ids []string
	for _, k := range ks {
		if k.Token != "" {
			ids = append(ids, k.Token)
		}
	}
	if len(ids) == 0 {
		return true
	}
	if err := d.api.DeleteAccessTokens(ctx, ids); err != nil && !errors.Is(err, mews.ErrBadRequest) {
		log.Warn().Err(err).Msg("deleting the digital key's record in Mews failed")
		return false
	}
	return true
}

func sameKeys(a, b []digitalKey) bool {
	return slices.EqualFunc(a, b, func(x, y digitalKey) bool {
		return x.ID == y.ID && x.Type == y.Type && x.Value == y.Value
	})
}
