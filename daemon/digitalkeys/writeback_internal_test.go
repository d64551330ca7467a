package digitalkeys

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mews-keyd/mews-keyd/keys"
	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// simPipeline is a test pipeline talking to a simulated Mews.
func simPipeline(t *testing.T, now time.Time) (*Pipeline, *mewstest.Server) {
	t.Helper()
	srv := mewstest.NewServer()
	t.Cleanup(srv.Close)
	c, err := mews.NewClient(mews.ClientConfig{APIURL: srv.URL(), ClientToken: mewstest.ClientToken,
		AccessToken: mewstest.AccessToken, Client: "digitalkeys test", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	d := testPipeline(t, now)
	d.api = c
	return d, srv
}

// TestWriteBackPairsByValue: Mews answers an add in another order than
// asked; every key still gets the id of its own token.
func TestWriteBackPairsByValue(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	d, srv := simPipeline(t, now)
	srv.ReverseAddedTokens(true)
	res := mewstest.ReservationCheckedIn
	rec := record{State: State{Status: Issued, Grant: Grant{Room: mewstest.RoomID("101"), From: now, Until: now.Add(48 * time.Hour)}},
		keySet: keySet{Keys: []storedKey{
			{ID: "k1", Type: keys.KeyPinCode, Value: "111111"},
			{ID: "k2", Type: keys.KeyPinCode, Value: "222222"},
			{ID: "k3", Type: keys.KeyMobile, Value: "secret"},
		}}}
	d.settleWriteBack(t.Context(), res, &rec, zerolog.Nop())
	if d.owesWriteBack(&rec) {
		t.Fatalf("record %+v still owes Mews", rec)
	}
	byID := map[string]mews.ResourceAccessToken{}
	for _, tok := range srv.AccessTokens() {
		byID[tok.ID] = tok
	}
	if len(byID) != 3 {
		t.Fatalf("Mews records %d tokens, want 3", len(byID))
	}
	for _, k := range rec.Keys {
		_, value := tokenOf(k)
		if tok := byID[k.Token]; tok.Value != value || tok.SerialNumber != k.ID {
			t.Errorf("key %s (%s) paired with token %+v", k.ID, value, tok)
		}
	}
}
