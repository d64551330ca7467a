package mewstest

import (
	"cmp"
	"crypto/sha1"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
)

// Reservations, resources and customers are answered with every field
// Mews's OpenAPI document marks required, not only those the client reads,
// so that the client is tested against what Mews really sends. The extra
// fields are filled here, from the stored record.

// Ids the answers refer to.
const (
	chainID            = "8a8b4a5c-7c2e-4d3b-9b1f-2f6a1c0d9e11" // the hotel chain of EnterpriseID
	staffProfileID     = "e3a1f2b4-5c6d-4e7f-8a9b-0c1d2e3f4a5b" // the receptionist who creates and edits records
	stayRateID         = "ed4b660b-19d0-434b-9360-a4de2ea42eda" // the flexible rate of the stay service
	doubleRoomID       = "773d5e42-de1e-43a0-9ce6-f940faf2303f" // the resource category "Double room"
	adultAgeCategoryID = "1f67644f-052d-4863-acdf-ae1600c60ca0"
)

// stamped is a stored resource or customer with the creation and update
// times Mews answers with, which the client's models leave out.
type stamped[T any] struct {
	v                T
	created, updated time.Time
}

// putStamped stores v, keeping the creation time of the record it replaces.
func putStamped[T any](o *ordered[stamped[T]], id string, v T, at time.Time) {
	rec := stamped[T]{v: v, created: at, updated: at}
	if old, ok := o.get(id); ok {
		rec.created = old.created
	}
	o.put(id, rec)
}

type reservationOptions struct {
	OwnerCheckedIn         bool `json:"OwnerCheckedIn"`
	AllCompanionsCheckedIn bool `json:"AllCompanionsCheckedIn"`
	AnyCompanionCheckedIn  bool `json:"AnyCompanionCheckedIn"`
	ConnectorCheckIn       bool `json:"ConnectorCheckIn"`
}

type personCount struct {
	AgeCategoryID string `json:"AgeCategoryId"`
	Count         int    `json:"Count"`
}

type reservationAnswer struct {
	mews.Reservation
	CreatorProfileID            string             `json:"CreatorProfileId"`
	UpdaterProfileID            string             `json:"UpdaterProfileId"`
	GroupID                     string             `json:"GroupId"`
	Options                     reservationOptions `json:"Options"`
	Origin                      string             `json:"Origin"`
	PersonCounts                []personCount      `json:"PersonCounts"`
	RateID                      string             `json:"RateId"`
	RequestedResourceCategoryID string             `json:"RequestedResourceCategoryId"`
	// Deprecated by Mews but still required: the start, or the check-in
	// if earlier; the scheduled end.
	StartUtc time.Time `json:"StartUtc"`
	EndUtc   time.Time `json:"EndUtc"`
}

func answerReservation(r mews.Reservation) reservationAnswer {
	r.ServiceID = cmp.Or(r.ServiceID, stayServiceID)
	r.AccountType = cmp.Or(r.AccountType, mews.AccountCustomer)
	start := r.ScheduledStartUtc
	if r.ActualStartUtc != nil && r.ActualStartUtc.Before(start) {
		start = *r.ActualStartUtc
	}
	// No companions: the owner's check-in is everyone's.
	checkedIn := r.ActualStartUtc != nil
	return reservationAnswer{
		Reservation:      r,
		CreatorProfileID: staffProfileID,
		UpdaterProfileID: staffProfileID,
		GroupID:          derivedID("group", r.ID), // a group of its own
		Options: reservationOptions{OwnerCheckedIn: checkedIn, AllCompanionsCheckedIn: checkedIn,
			AnyCompanionCheckedIn: checkedIn},
		Origin:                      "Commander", // booked at the front desk
		PersonCounts:                []personCount{{AgeCategoryID: adultAgeCategoryID, Count: 2}},
		RateID:                      stayRateID,
		RequestedResourceCategoryID: doubleRoomID,
		StartUtc:                    start,
		EndUtc:                      r.ScheduledEndUtc,
	}
}

// companionshipAnswer is a companionship with the reservation's group.
type companionshipAnswer struct {
	mews.Companionship
	ReservationGroupID string `json:"ReservationGroupId"`
}

func answerCompanionship(c mews.Companionship) companionshipAnswer {
	return companionshipAnswer{Companionship: c, ReservationGroupID: derivedID("group", c.ReservationID)}
}

// localized is Mews's localized text: language code to text.
type localized map[string]string

type resourceAnswer struct {
	mews.Resource
	EnterpriseID  string    `json:"EnterpriseId"`
	CreatedUtc    time.Time `json:"CreatedUtc"`
	UpdatedUtc    time.Time `json:"UpdatedUtc"`
	Descriptions  localized `json:"Descriptions"`
	Directions    localized `json:"Directions"`
	ExternalNames localized `json:"ExternalNames"`
}

func answerResource(r stamped[mews.Resource]) resourceAnswer {
	return resourceAnswer{
		Resource:      r.v,
		EnterpriseID:  EnterpriseID,
		CreatedUtc:    r.created,
		UpdatedUtc:    r.updated,
		Descriptions:  localized{"en-US": "Double room with a queen-size bed"},
		Directions:    localized{}, // seldom filled in
		ExternalNames: localized{"en-US": "Room " + r.v.Name},
	}
}

type customerAnswer struct {
	mews.Customer
	ChainID                string    `json:"ChainId"`
	Number                 string    `json:"Number"`
	IsActive               bool      `json:"IsActive"`
	Classifications        []string  `json:"Classifications"`
	Options                []string  `json:"Options"`
	PreferredSpaceFeatures []string  `json:"PreferredSpaceFeatures"`
	CreatedUtc             time.Time `json:"CreatedUtc"`
	UpdatedUtc             time.Time `json:"UpdatedUtc"`
	CreatorProfileID       string    `json:"CreatorProfileId"`
	UpdaterProfileID       string    `json:"UpdaterProfileId"`
}

func answerCustomer(c stamped[mews.Customer]) customerAnswer {
	h := fnv.New32a()
	h.Write([]byte(c.v.ID))
	return customerAnswer{
		Customer:               c.v,
		ChainID:                chainID,
		Number:                 fmt.Sprint(h.Sum32()), // unique enough, and stable
		IsActive:               true,
		Classifications:        []string{},
		Options:                []string{"SendMarketingEmails"},
		PreferredSpaceFeatures: []string{},
		CreatedUtc:             c.created,
		UpdatedUtc:             c.updated,
		CreatorProfileID:       staffProfileID,
		UpdaterProfileID:       staffProfileID,
	}
}

// derivedID returns a stable UUID for the kind of thing belonging to id,
// e.g. a reservation's group.
func derivedID(kind, id string) string {
	b := sha1.Sum([]byte(kind + "/" + id))
	b[6] = b[6]&0x0f | 0x50 // version 5: name-based, SHA-1
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// answerAll turns stored items into their answers.
func answerAll[T, A any](items []T, answer func(T) A) []A {
	out := make([]A, len(items))
	for i, it := range items {
		out[i] = answer(it)
	}
	return out
}
