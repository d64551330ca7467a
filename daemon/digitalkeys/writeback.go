package digitalkeys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// Write-back records digital keys in Mews as resource access tokens so staff
// see them on the reservation. What Mews should show is part of the
// reservation's journalled record: Keys must show (a key without a token id
// is owed an add), Gone must not (owed a delete), ValidityOwed says the
// tokens' dates are behind the grant. Settling retries with backoff, across
// restarts too, until Mews has accepted everything. Failures never undo the
// key: the guest's door matters more than the record.

// owesWriteBack reports whether Mews does not yet show what the record says.
func (dk *Pipeline) owesWriteBack(rec *record) bool {
	if !dk.writeBack {
		return false
	}
	if len(rec.Gone) > 0 || rec.ValidityOwed {
		return true
	}
	return slices.ContainsFunc(rec.Keys, func(k storedKey) bool {
		_, v := tokenOf(k)
		return k.Token == "" && v != ""
	})
}

// owe records what Mews must show after a successful operation: the keys
// the encoder returned replace the old ones, or, when only the dates
// changed, the old tokens get the new dates.
func (dk *Pipeline) owe(rec *record, act Action, prev, grant Grant, old, cur []storedKey) {
	if !dk.writeBack {
		rec.Keys = cur
		return
	}
	if act == Update && prev.Room == grant.Room && sameKeys(old, cur) {
		rec.Keys = slices.Clone(old)
		rec.ValidityOwed = rec.ValidityOwed || slices.ContainsFunc(old, func(k storedKey) bool { return k.Token != "" || k.Sent })
		return
	}
	for _, k := range old {
		if k.Token != "" || k.Sent {
			rec.Gone = append(rec.Gone, k)
		}
	}
	rec.Keys, rec.ValidityOwed = cur, false
	for i := range rec.Keys {
		rec.Keys[i].Token, rec.Keys[i].Sent, rec.Keys[i].Room = "", false, grant.Room
	}
}

// settleWriteBack brings Mews in line with the record, saving the record as
// it goes, and schedules a retry of whatever failed.
func (dk *Pipeline) settleWriteBack(ctx context.Context, id string, rec *record, log zerolog.Logger) {
	err := dk.syncTokens(ctx, id, rec, log)
	if err == nil {
		rec.WriteBackAt, rec.WriteBackAttempts = time.Time{}, 0
	} else if ctx.Err() == nil {
		rec.WriteBackAttempts++
		rec.WriteBackAt = dk.now().Add(dk.retry.After(rec.WriteBackAttempts))
		log.Warn().Err(err).Int("attempt", rec.WriteBackAttempts).Time("retry_at", rec.WriteBackAt).
			Msg("recording the digital key in Mews failed; will retry")
	}
	if err := dk.save(id, rec); err != nil {
		log.Error().Err(err).Msg("cannot journal the Mews records of the digital key")
	}
}

// syncTokens runs the owed deletes, adds and date changes. An add that may
// have reached Mews (Sent) is first looked up, so a key never shows twice.
func (dk *Pipeline) syncTokens(ctx context.Context, id string, rec *record, log zerolog.Logger) error {
	if slices.ContainsFunc(rec.Keys, unconfirmed) || slices.ContainsFunc(rec.Gone, unconfirmed) {
		found, err := dk.api.AccessTokens(ctx, []string{id})
		if err != nil {
			return err
		}
		claimed := map[string]bool{}
		match(rec.Keys, found, claimed)
		match(rec.Gone, found, claimed)
	}
	var errs []error
	if err := dk.deleteGone(ctx, rec); err != nil {
		errs = append(errs, err)
	}
	if err := dk.addTokens(ctx, id, rec); err != nil {
		errs = append(errs, err)
	}
	if err := dk.updateTokenValidity(ctx, rec); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Debug().Msg("digital key recorded in Mews")
	}
	return errors.Join(errs...)
}

// unconfirmed: an add of this key may have reached Mews without our
// learning its token id.
func unconfirmed(k storedKey) bool { return k.Token == "" && k.Sent }

// match gives unconfirmed keys the ids of the active tokens Mews holds for
// them; a key Mews does not hold was never added.
func match(ks []storedKey, found []mews.ResourceAccessToken, claimed map[string]bool) {
	for i := range ks {
		k := &ks[i]
		if !unconfirmed(*k) {
			continue
		}
		claim(k, found, claimed)
		k.Sent = false
	}
}

// claim gives k the id of the first active token, not claimed yet, that
// records it: same type, value, serial number and room. Tokens are paired
// with keys by what they record, never by their place in an answer.
func claim(k *storedKey, found []mews.ResourceAccessToken, claimed map[string]bool) bool {
	typ, value := tokenOf(*k)
	for _, t := range found {
		if t.IsActive && !claimed[t.ID] && t.Type == typ && t.Value == value && t.SerialNumber == k.ID &&
			(k.Room == "" || t.ResourceID == k.Room) {
			k.Token, claimed[t.ID] = t.ID, true
			return true
		}
	}
	return false
}

// tokenOf maps a key onto what Mews can record. Mews knows PIN codes and
// RFID tags only. A mobile key is a credential held in the lock vendor's
// app; like an RFID tag's number, its id identifies it without opening
// anything, so it is recorded as an RfidTag carrying the key's id (its
// value only when there is no id): the secret of a mobile key never goes to
// Mews.
func tokenOf(k storedKey) (mews.AccessTokenType, string) {
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

// addTokens adds the keys Mews does not show yet. They are journalled as
// sent before the request leaves: whatever happens to it, the next attempt
// looks before adding again.
func (dk *Pipeline) addTokens(ctx context.Context, reservation string, rec *record) error {
	var tokens []mews.ResourceAccessToken
	var index []int // tokens[i] records rec.Keys[index[i]]
	for i, k := range rec.Keys {
		typ, value := tokenOf(k)
		if k.Token != "" || value == "" {
			continue
		}
		tokens = append(tokens, mews.ResourceAccessToken{
			ServiceOrderID: reservation, ResourceID: rec.Grant.Room, Type: typ, Value: value, SerialNumber: k.ID,
			ValidityStartUtc: rec.Grant.From, ValidityEndUtc: rec.Grant.Until,
		})
		index = append(index, i)
	}
	if len(tokens) == 0 {
		return nil
	}
	for _, i := range index {
		rec.Keys[i].Sent, rec.Keys[i].Room = true, rec.Grant.Room
	}
	if err := dk.save(reservation, rec); err != nil {
		return err
	}
	added, err := dk.api.AddAccessTokens(ctx, tokens)
	if err != nil {
		return err
	}
	claimed := map[string]bool{}
	missing := 0
	for _, i := range index {
		k := &rec.Keys[i]
		if claim(k, added, claimed) {
			k.Sent = false
		} else {
			missing++ // still Sent: the next attempt looks it up
		}
	}
	if missing > 0 {
		return fmt.Errorf("the answer to %s lacks %d of the %d keys added", mews.OpAddAccessTokens, missing, len(index))
	}
	return nil
}

func (dk *Pipeline) updateTokenValidity(ctx context.Context, rec *record) error {
	if !rec.ValidityOwed {
		return nil
	}
	g := rec.Grant
	var updates []mews.AccessTokenUpdate
	for _, k := range rec.Keys {
		if k.Token != "" {
			updates = append(updates, mews.AccessTokenUpdate{ID: k.Token, ValidityStartUtc: &g.From, ValidityEndUtc: &g.Until})
		}
	}
	if len(updates) > 0 {
		if _, err := dk.api.UpdateAccessTokens(ctx, updates); err != nil {
			return err
		}
	}
	rec.ValidityOwed = false
	return nil
}

// deleteGone deletes the tokens of replaced and revoked keys. A token Mews
// does not know (deleted by staff) counts as deleted, and so does a key
// whose add never reached Mews.
func (dk *Pipeline) deleteGone(ctx context.Context, rec *record) error {
	var ids []string
	for _, k := range rec.Gone {
		if k.Token != "" {
			ids = append(ids, k.Token)
		}
	}
	if len(ids) > 0 {
		if err := dk.api.DeleteAccessTokens(ctx, ids); err != nil && !errors.Is(err, mews.ErrBadRequest) {
			return err
		}
	}
	rec.Gone = nil
	return nil
}

func sameKeys(a, b []storedKey) bool {
	return slices.EqualFunc(a, b, func(x, y storedKey) bool {
		return x.ID == y.ID && x.Type == y.Type && x.Value == y.Value
	})
}
