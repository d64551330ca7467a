package digitalkeys

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
)

// Write-back records digital keys in Mews as resource access tokens so staff
// see them on the reservation. What Mews should show is part of the
// reservation's journalled record: every person's Keys must show (a key
// without a token id is owed an add), Gone must not (owed a delete),
// ValidityOwed says the tokens' dates are behind the grant. Settling retries
// with backoff, across restarts too, until Mews has accepted everything.
// Failures never undo the key: the guest's door matters more than the
// record.

// holder is one person's keys as Mews records them: the main guest's
// (companionship "") or a companion's.
type holder struct {
	companionship string
	grant         Grant
	set           *keySet
}

// holders returns the main guest's keys and each companion's, in a stable
// order.
func (rec *record) holders() []holder {
	hs := []holder{{grant: rec.Grant, set: &rec.keySet}}
	for _, id := range slices.Sorted(maps.Keys(rec.Companions)) {
		c := rec.Companions[id]
		hs = append(hs, holder{companionship: id, grant: c.Grant, set: &c.keySet})
	}
	return hs
}

// owesWriteBack reports whether Mews does not yet show what the record says.
func (dk *Pipeline) owesWriteBack(rec *record) bool {
	if !dk.writeBack {
		return false
	}
	if len(rec.Gone) > 0 {
		return true
	}
	return slices.ContainsFunc(rec.holders(), func(h holder) bool {
		return h.set.ValidityOwed || slices.ContainsFunc(h.set.Keys, func(k storedKey) bool {
			_, v := tokenOf(k)
			return k.Token == "" && v != ""
		})
	})
}

// keyTag says whose keys, for what, a set holds once an operation has
// made them.
type keyTag struct {
	companionship string
	bed           bool
}

// owe records what Mews must show after a successful operation on one
// person's keys: the keys the encoder returned (cur) replace the old ones,
// whose tokens go to gone; or, when only the dates changed, the old tokens
// get the new dates.
func (dk *Pipeline) owe(set *keySet, gone *[]storedKey, act Action, prev, grant Grant, cur []storedKey, tag keyTag) {
	old := set.Keys
	if !dk.writeBack {
		set.Keys = cur
		return
	}
	if act == Update && prev.Room == grant.Room && sameKeys(old, cur) {
		set.Keys = slices.Clone(old)
		set.ValidityOwed = set.ValidityOwed || slices.ContainsFunc(old, func(k storedKey) bool { return k.Token != "" || k.Sent })
		return
	}
	for _, k := range old {
		if k.Token != "" || k.Sent {
			*gone = append(*gone, k)
		}
	}
	set.Keys, set.ValidityOwed = cur, false
	for i := range set.Keys {
		k := &set.Keys[i]
		k.Token, k.Sent, k.Room, k.Bed, k.Companionship = "", false, grant.Room, tag.bed, tag.companionship
	}
}

// keysAfter returns the keys a person holds after a successful operation:
// none after a revoke, the encoder's otherwise (an update that returns
// none keeps the old ones).
func keysAfter(act Action, old []storedKey, res keys.Result) []storedKey {
	switch {
	case act == Revoke:
		return nil
	case len(res.Keys) > 0 || act != Update:
		return newKeys(res.Keys)
	default:
		return old
	}
}

// settleOwed settles what the reservation's record owes Mews, if anything.
func (dk *Pipeline) settleOwed(ctx context.Context, id string, log zerolog.Logger) {
	rec, err := dk.load(id)
	if err != nil {
		log.Error().Err(err).Msg("reading the digital key record for its write-back")
		return
	}
	if dk.owesWriteBack(&rec) {
		dk.settleWriteBack(ctx, id, &rec, log)
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
	hs := rec.holders()
	anyUnconfirmed := slices.ContainsFunc(hs, func(h holder) bool { return slices.ContainsFunc(h.set.Keys, unconfirmed) })
	if anyUnconfirmed || slices.ContainsFunc(rec.Gone, unconfirmed) {
		found, err := dk.api.AccessTokens(ctx, []string{id})
		if err != nil {
			return err
		}
		claimed := map[string]bool{}
		for _, h := range hs {
			match(h.set.Keys, found, claimed)
		}
		match(rec.Gone, found, claimed)
	}
	var errs []error
	if err := dk.deleteGone(ctx, rec); err != nil {
		errs = append(errs, err)
	}
	if err := dk.addTokens(ctx, id, rec, hs); err != nil {
		errs = append(errs, err)
	}
	if err := dk.updateTokenValidity(ctx, hs); err != nil {
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
// records it: same type, value, serial number, room and companion. Tokens
// are paired with keys by what they record, never by their place in an
// answer.
func claim(k *storedKey, found []mews.ResourceAccessToken, claimed map[string]bool) bool {
	typ, value := tokenOf(*k)
	for _, t := range found {
		if t.IsActive && !claimed[t.ID] && t.Type == typ && t.Value == value && t.SerialNumber == k.ID &&
			(k.Room == "" || t.ResourceID == k.Room) && t.CompanionshipID == k.Companionship {
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

// addTokens adds, in one request, the keys Mews does not show yet. They
// are journalled as sent before the request leaves: whatever happens to it,
// the next attempt looks before adding again.
func (dk *Pipeline) addTokens(ctx context.Context, reservation string, rec *record, hs []holder) error {
	var tokens []mews.ResourceAccessToken
	var sent []*storedKey // the keys tokens record, in no particular order
	for _, h := range hs {
		for i := range h.set.Keys {
			k := &h.set.Keys[i]
			typ, value := tokenOf(*k)
			if k.Token != "" || value == "" {
				continue
			}
			k.Sent, k.Room, k.Companionship = true, h.grant.Room, h.companionship
			tokens = append(tokens, mews.ResourceAccessToken{
				ServiceOrderID: reservation, ResourceID: h.grant.Room, CompanionshipID: h.companionship,
				Type: typ, Value: value, SerialNumber: k.ID,
				ValidityStartUtc: h.grant.From, ValidityEndUtc: h.grant.Until, Permissions: permissions(*k),
			})
			sent = append(sent, k)
		}
	}
	if len(tokens) == 0 {
		return nil
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
	for _, k := range sent {
		if claim(k, added, claimed) {
			k.Sent = false
		} else {
			missing++ // still Sent: the next attempt looks it up
		}
	}
	if missing > 0 {
		return fmt.Errorf("the answer to %s lacks %d of the %d keys added", mews.OpAddAccessTokens, missing, len(sent))
	}
	return nil
}

// permissions is what Mews records a key as opening: a bed's key opens
// the bed and its room; nil is the room alone.
func permissions(k storedKey) *mews.Permissions {
	if k.Bed {
		return &mews.Permissions{Bed: true, Room: true}
	}
	return nil
}

func (dk *Pipeline) updateTokenValidity(ctx context.Context, hs []holder) error {
	var updates []mews.AccessTokenUpdate
	var owed []*keySet
	for _, h := range hs {
		if !h.set.ValidityOwed {
			continue
		}
		owed = append(owed, h.set)
		g := h.grant
		for _, k := range h.set.Keys {
			if k.Token != "" {
				updates = append(updates, mews.AccessTokenUpdate{ID: k.Token, ValidityStartUtc: &g.From, ValidityEndUtc: &g.Until})
			}
		}
	}
	if len(updates) > 0 {
		if _, err := dk.api.UpdateAccessTokens(ctx, updates); err != nil {
			return err
		}
	}
	for _, set := range owed {
		set.ValidityOwed = false
	}
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
