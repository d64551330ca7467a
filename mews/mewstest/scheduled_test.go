package mewstest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// TestScheduledStartFilter goes through the client: ScheduledStartUtc
// selects by scheduled arrival, with Mews's interval rules.
func TestScheduledStartFilter(t *testing.T) {
	s := newServer(t)
	c, err := mews.NewClient(mews.ClientConfig{APIURL: s.URL(), ClientToken: mewstest.ClientToken,
		AccessToken: mewstest.AccessToken, Client: "test 1.0"})
	if err != nil {
		t.Fatal(err)
	}
	arriving, _ := s.Reservation(mewstest.ReservationArriving)
	start := arriving.ScheduledStartUtc
	rs, err := c.Reservations(testCtx(t), mews.ReservationFilter{States: []mews.ReservationState{mews.ReservationConfirmed},
		ScheduledStartFrom: start.Add(-time.Hour), ScheduledStartTo: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].ID != mewstest.ReservationArriving {
		t.Errorf("got %+v, want only the arriving reservation", rs)
	}
	rs, err = c.Reservations(testCtx(t), mews.ReservationFilter{
		ScheduledStartFrom: start.Add(time.Minute), ScheduledStartTo: start.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.ID == mewstest.ReservationArriving {
			t.Errorf("a reservation starting before the interval was returned")
		}
	}
	_, err = c.Reservations(testCtx(t), mews.ReservationFilter{ScheduledStartFrom: start, ScheduledStartTo: start.AddDate(0, 4, 0)})
	if !errors.Is(err, mews.ErrBadRequest) {
		t.Errorf("a four-month interval: %v, want a bad request", err)
	}
}
