package digitalkeys

import (
	"fmt"
	"testing"

	"github.com/mews-keyd/mews-keyd/mews"
)

func TestWhoIs(t *testing.T) {
	owner := &mews.Reservation{ID: "r", AccountID: "owner", AccountType: mews.AccountCustomer}
	company := &mews.Reservation{ID: "r", AccountID: "acme", AccountType: mews.AccountCompany}
	cs := func(customers ...string) []mews.Companionship {
		var out []mews.Companionship
		for _, c := range customers {
			out = append(out, mews.Companionship{ID: "c-" + c, CustomerID: c, ReservationID: "r"})
		}
		return out
	}
	for _, c := range []struct {
		name       string
		r          *mews.Reservation
		cs         []mews.Companionship
		held       string
		main       string
		companions string
	}{
		{"owner alone", owner, nil, "", "owner", "[]"},
		{"owner listed among the companions", owner, cs("owner", "a", "b"), "owner", "owner", "[a b]"},
		{"company: the first Mews lists", company, cs("a", "b"), "", "a", "[b]"},
		{"company: the holder stays", company, cs("a", "b"), "b", "b", "[a]"},
		{"company: the holder left", company, cs("a", "c"), "b", "a", "[c]"},
		{"company: nobody", company, nil, "b", "", "[]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := whoIs(c.r, c.cs, c.held)
			var got []string
			for _, x := range p.companions {
				got = append(got, x.CustomerID)
			}
			if p.main != c.main || fmt.Sprint(got) != c.companions {
				t.Errorf("main %q, companions %v; want %q, %s", p.main, got, c.main, c.companions)
			}
		})
	}
}
