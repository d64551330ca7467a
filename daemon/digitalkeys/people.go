package digitalkeys

import (
	"context"
	"fmt"

	"github.com/mews-keyd/mews-keyd/mews"
)

// people is who is on a reservation, as far as keys go: the main guest,
// who holds the reservation's key, and the others travelling with them.
type people struct {
	main       string // customer id; "" when nobody is on the reservation
	companions []mews.Companionship
}

// whoIs sorts a reservation's companionships. A customer who owns the
// reservation is its main guest. A company-owned one has guests only as
// companions: the main guest is the one who holds the key already (held
// is their customer id), as long as they stay, or else the first Mews
// lists, so that the key does not wander between them.
func whoIs(r *mews.Reservation, cs []mews.Companionship, held string) people {
	main := r.AccountID
	if r.AccountType == mews.AccountCompany {
		main = ""
		for _, c := range cs {
			if c.CustomerID == held {
				main = held
				break
			}
		}
		if main == "" && len(cs) > 0 {
			main = cs[0].CustomerID
		}
	}
	p := people{main: main}
	for _, c := range cs {
		if c.CustomerID != main {
			p.companions = append(p.companions, c)
		}
	}
	return p
}

// needsPeople says whether the plan must know who is on the reservation:
// when its main guest holds a key (or is about to) and either the
// reservation is company-owned (the main guest is a companion, who may
// change) or companions get keys of their own.
func (p *plan) needsPeople(companions bool) bool {
	if p.dec.Stale || p.dec.Next.Status != Issued {
		return false
	}
	return p.r.AccountType == mews.AccountCompany || companions
}

// mainGuest is the customer id the reservation's key is for; "" when
// unknown (nobody on a company-owned reservation, or not asked).
func (p *plan) mainGuest() string {
	if p.r.AccountType != mews.AccountCompany {
		return p.r.AccountID
	}
	if p.who == nil {
		return ""
	}
	return p.who.main
}

// holderLeft reports whether the main guest's key was made for someone
// who is no longer the reservation's main guest. Keys recorded before the
// holder was (Guest empty) are taken as theirs.
func (p *plan) holderLeft() bool {
	if p.rec.Guest == "" || (p.r.AccountType == mews.AccountCompany && p.who == nil) {
		return false
	}
	return p.mainGuest() != p.rec.Guest
}

// findPeople asks Mews, in one request, who is on the reservations that
// need to know, and turns the decision about a key whose holder left into
// its replacement.
func (dk *Pipeline) findPeople(ctx context.Context, plans []plan) error {
	var ids []string
	for i := range plans {
		if plans[i].needsPeople(dk.withCompanions) {
			ids = append(ids, plans[i].r.ID)
		}
	}
	var byReservation map[string][]mews.Companionship
	if len(ids) > 0 {
		cs, err := dk.api.Companionships(ctx, ids)
		if err != nil {
			return fmt.Errorf("fetch the guests of reservations: %w", err)
		}
		byReservation = make(map[string][]mews.Companionship, len(ids))
		for _, c := range cs {
			byReservation[c.ReservationID] = append(byReservation[c.ReservationID], c)
		}
	}
	for i := range plans {
		p := &plans[i]
		if p.needsPeople(dk.withCompanions) {
			who := whoIs(p.r, byReservation[p.r.ID], p.rec.Guest)
			p.who = &who
		}
		if p.holderLeft() {
			p.dec = ForNewHolder(p.dec, p.r)
		}
	}
	return nil
}

// guestsToFetch returns the customers the plan needs: the main guest of a
// key being made, and the companions who may get a key or whose key
// changes (for their names and whether they can receive one).
func (dk *Pipeline) guestsToFetch(p *plan) []string {
	var ids []string
	if p.makesKey() && p.mainGuest() != "" {
		ids = append(ids, p.mainGuest())
	}
	if p.who == nil || !dk.withCompanions {
		return ids
	}
	for _, c := range p.who.companions {
		prev := p.rec.Companions[c.ID]
		if prev == nil {
			ids = append(ids, c.CustomerID)
			continue
		}
		if act, _ := DecideCompanion(&prev.Companion, true, p.dec.Next.Grant, dk.policy); act != None {
			ids = append(ids, c.CustomerID)
		}
	}
	return ids
}

// reachable: a digital key is sent to the guest's e-mail or phone.
func reachable(c mews.Customer) bool { return c.Email != "" || c.Phone != "" }

// unnamed: a customer record without a name, or none at all.
func unnamed(c mews.Customer) bool { return c.FirstName == "" && c.LastName == "" }
