package mewstest_test

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// check tests one field of an answer; a nil error means it has the type
// and shape Mews's OpenAPI document gives it.
type check func(v any) error

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func isUUID(v any) error {
	if s, _ := v.(string); !uuidPattern.MatchString(s) {
		return fmt.Errorf("%#v is not a UUID", v)
	}
	return nil
}

func isTime(v any) error {
	s, _ := v.(string)
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		return fmt.Errorf("%#v is not a time", v)
	}
	return nil
}

func isBool(v any) error {
	if _, ok := v.(bool); !ok {
		return fmt.Errorf("%#v is not a boolean", v)
	}
	return nil
}

func oneOf(values ...string) check {
	return func(v any) error {
		for _, want := range values {
			if v == want {
				return nil
			}
		}
		return fmt.Errorf("%#v is not one of %v", v, values)
	}
}

var digitsPattern = regexp.MustCompile(`^\d{1,19}$`)

func isDigits(v any) error {
	if s, _ := v.(string); !digitsPattern.MatchString(s) {
		return fmt.Errorf("%#v is not a number of 1 to 19 digits", v)
	}
	return nil
}

// isObject checks an object whose every listed key passes its check.
func isObject(fields map[string]check) check {
	return func(v any) error {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%#v is not an object", v)
		}
		for k, c := range fields {
			if err := c(m[k]); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	}
}

// isLocalized checks a localized text: an object of language code to text.
func isLocalized(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%#v is not a localized text", v)
	}
	for lang, text := range m {
		if _, ok := text.(string); !ok || lang == "" {
			return fmt.Errorf("%q: %#v is not a text", lang, text)
		}
	}
	return nil
}

// isArray checks an array of at least min items, each passing item.
func isArray(min int, item check) check {
	return func(v any) error {
		list, ok := v.([]any)
		if !ok || len(list) < min {
			return fmt.Errorf("%#v is not an array of at least %d", v, min)
		}
		for i, it := range list {
			if err := item(it); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	}
}

// The fields Mews's OpenAPI document marks required, with their shapes.
var (
	requiredReservation = map[string]check{
		"AccountType":      oneOf("Customer", "Company"),
		"CreatorProfileId": isUUID,
		"UpdaterProfileId": isUUID,
		"GroupId":          isUUID,
		"Options": isObject(map[string]check{"OwnerCheckedIn": isBool, "AllCompanionsCheckedIn": isBool,
			"AnyCompanionCheckedIn": isBool, "ConnectorCheckIn": isBool}),
		"Origin":                      oneOf("Distributor", "ChannelManager", "Commander", "Import", "Connector", "Navigator"),
		"PersonCounts":                isArray(1, isObject(map[string]check{"AgeCategoryId": isUUID, "Count": isPositive})),
		"RateId":                      isUUID,
		"RequestedResourceCategoryId": isUUID,
		"StartUtc":                    isTime,
		"EndUtc":                      isTime,
		"ServiceId":                   isUUID,
		"CreatedUtc":                  isTime,
		"UpdatedUtc":                  isTime,
		"ScheduledStartUtc":           isTime,
		"ScheduledEndUtc":             isTime,
	}
	requiredResource = map[string]check{
		"CreatedUtc":    isTime,
		"UpdatedUtc":    isTime,
		"EnterpriseId":  isUUID,
		"Descriptions":  isLocalized,
		"Directions":    isLocalized,
		"ExternalNames": isLocalized,
		"IsActive":      isBool,
	}
	requiredCustomer = map[string]check{
		"ChainId":                isUUID,
		"Number":                 isDigits,
		"IsActive":               isBool,
		"Classifications":        isArray(0, oneOf("Returning", "Important", "VeryImportant", "Staff", "LoyaltyProgram")),
		"Options":                isArray(0, oneOf("SendMarketingEmails", "Invoiceable", "GuestPhotoConsent")),
		"PreferredSpaceFeatures": isArray(0, oneOf("SeaView", "TwinBeds", "DoubleBed", "HighFloor", "Balcony", "AccessibleRoom")),
		"CreatedUtc":             isTime,
		"UpdatedUtc":             isTime,
		"CreatorProfileId":       isUUID,
		"UpdaterProfileId":       isUUID,
	}
)

func isPositive(v any) error {
	if n, _ := v.(float64); n < 1 || n != float64(int(n)) {
		return fmt.Errorf("%#v is not a positive integer", v)
	}
	return nil
}

// TestAnswersCarryRequiredFields: reservations, resources and customers
// come with every field Mews's OpenAPI document marks required, shaped as
// it says — the fixtures and what tests add alike.
func TestAnswersCarryRequiredFields(t *testing.T) {
	s := newServer(t)
	now := time.Now().UTC().Truncate(time.Second)
	s.AddReservation(mews.Reservation{ID: "a1b2c3d4-0000-4000-8000-000000000001", Number: "2001", State: mews.ReservationConfirmed,
		AccountID: mewstest.CustomerNovak.ID, ScheduledStartUtc: now, ScheduledEndUtc: now.Add(48 * time.Hour)})
	s.AddResource(mews.Resource{ID: "a1b2c3d4-0000-4000-8000-000000000002", Name: "201", IsActive: true})
	s.AddCustomer(mews.Customer{ID: "a1b2c3d4-0000-4000-8000-000000000003", LastName: "Nowak"})
	lim := map[string]any{"Count": 1000}

	for _, tc := range []struct {
		op, list string
		body     map[string]any
		required map[string]check
	}{
		{"reservations/getAll/2023-06-06", "Reservations",
			map[string]any{"UpdatedUtc": map[string]any{"StartUtc": now.AddDate(0, -1, 0), "EndUtc": now.Add(time.Minute)}, "Limitation": lim},
			requiredReservation},
		{"resources/getAll", "Resources", map[string]any{"Extent": map[string]any{"Resources": true}, "Limitation": lim}, requiredResource},
		{"customers/getAll", "Customers", map[string]any{"CustomerIds": []string{mewstest.CustomerNovak.ID, mewstest.CustomerGarcia.ID,
			"a1b2c3d4-0000-4000-8000-000000000003"}, "Extent": map[string]any{"Customers": true}, "Limitation": lim}, requiredCustomer},
	} {
		t.Run(tc.list, func(t *testing.T) {
			a := call(t, s, tc.op, tc.body)
			items, _ := a.body[tc.list].([]any)
			if a.status != 200 || len(items) < 3 {
				t.Fatalf("status %d, %d %s: %s", a.status, len(items), tc.list, a.raw)
			}
			for _, it := range items {
				item, _ := it.(map[string]any)
				for field, c := range tc.required {
					v, present := item[field]
					if !present {
						t.Errorf("%s %v: no %s", tc.list, item["Id"], field)
					} else if err := c(v); err != nil {
						t.Errorf("%s %v: %s: %v", tc.list, item["Id"], field, err)
					}
				}
			}
		})
	}
}
