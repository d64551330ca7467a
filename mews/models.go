package mews

import (
	"encoding/json"
	"fmt"
	"time"
)

// CommandState is the life-cycle state of a device command in Mews.
type CommandState string

// Command states as documented by Mews. Pending and Received are "active":
// commands/getAllActive returns exactly those.
const (
	CommandPending    CommandState = "Pending"
	CommandReceived   CommandState = "Received"
	CommandProcessing CommandState = "Processing"
	CommandProcessed  CommandState = "Processed"
	CommandCancelled  CommandState = "Cancelled"
	CommandError      CommandState = "Error"
)

// Final reports whether no further state change is allowed.
func (s CommandState) Final() bool {
	return s == CommandProcessed || s == CommandCancelled || s == CommandError
}

// DeviceType says what kind of device a command is for; it decides the shape
// of Command.Data.
type DeviceType string

// Device types documented by Mews.
const (
	DeviceKeyCutter       DeviceType = "KeyCutter"
	DevicePrinter         DeviceType = "Printer"
	DevicePaymentTerminal DeviceType = "PaymentTerminal"
	DeviceFiscalMachine   DeviceType = "FiscalMachine"
	DevicePassportScanner DeviceType = "PassportScanner"
)

// Device is a physical device registered in Mews.
type Device struct {
	ID         string     `json:"Id"`
	Type       DeviceType `json:"Type"`
	Name       string     `json:"Name"`
	Identifier string     `json:"Identifier,omitempty"`
}

// Creator is the staff member who created a command.
type Creator struct {
	FirstName string `json:"FirstName,omitempty"`
	LastName  string `json:"LastName,omitempty"`
	ImageURL  string `json:"ImageUrl,omitempty"`
}

// Command is a device command. Data is kept raw because its shape depends on
// Device.Type; other device types pass through untouched.
type Command struct {
	ID         string          `json:"Id"`
	State      CommandState    `json:"State"`
	CreatedUtc time.Time       `json:"CreatedUtc"`
	Creator    *Creator        `json:"Creator,omitempty"`
	Device     Device          `json:"Device"`
	Data       json.RawMessage `json:"Data,omitempty"`

	// ServerTime is when Mews sent the answer that delivered the command,
	// by Mews's clock (the answer's Date header, whole seconds); zero if
	// the header was missing or unreadable. ServerTime - CreatedUtc is the
	// command's age whatever the PC clock says.
	ServerTime time.Time `json:"-"`
}

// KeyCutterData is Command.Data for KeyCutter devices, every documented field.
type KeyCutterData struct {
	KeyCutterID         string    `json:"KeyCutterId,omitempty"`
	APIURL              string    `json:"ApiUrl,omitempty"`
	KeyCutterData       string    `json:"KeyCutterData,omitempty"`
	KeyCount            int       `json:"KeyCount"`
	LockIDs             []string  `json:"LockIds"`
	StartUtc            time.Time `json:"StartUtc"`
	EndUtc              time.Time `json:"EndUtc"`
	FirstName           string    `json:"FirstName,omitempty"`
	LastName            string    `json:"LastName"`
	NormalizedFirstName string    `json:"NormalizedFirstName,omitempty"`
	NormalizedLastName  string    `json:"NormalizedLastName,omitempty"`
	Telephone           string    `json:"Telephone,omitempty"`
	Email               string    `json:"Email,omitempty"`
	ReservationID       string    `json:"ReservationId,omitempty"`
	ReservationNumber   string    `json:"ReservationNumber,omitempty"`
}

// KeyCutter decodes Data of a KeyCutter command. Times come back in UTC.
func (c *Command) KeyCutter() (*KeyCutterData, error) {
	if c.Device.Type != DeviceKeyCutter {
		return nil, fmt.Errorf("command %s is for a %s device, not a KeyCutter", c.ID, c.Device.Type)
	}
	var d KeyCutterData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return nil, fmt.Errorf("command %s: key cutter data: %w", c.ID, err)
	}
	d.StartUtc, d.EndUtc = d.StartUtc.UTC(), d.EndUtc.UTC()
	return &d, nil
}

// ReservationState is the state of a reservation (version 2023-06-06).
type ReservationState string

// Reservation states documented by Mews.
const (
	ReservationInquired  ReservationState = "Inquired"
	ReservationConfirmed ReservationState = "Confirmed"
	ReservationStarted   ReservationState = "Started"
	ReservationProcessed ReservationState = "Processed"
	ReservationCanceled  ReservationState = "Canceled"
	ReservationOptional  ReservationState = "Optional"
	ReservationRequested ReservationState = "Requested"
)

// AccountType says who owns a reservation.
type AccountType string

// Account types. A company-owned reservation's guests are its companions.
const (
	AccountCustomer AccountType = "Customer"
	AccountCompany  AccountType = "Company"
)

// Reservation is the subset of reservations/getAll/2023-06-06 we use.
type Reservation struct {
	ID        string           `json:"Id"`
	ServiceID string           `json:"ServiceId,omitempty"`
	Number    string           `json:"Number"`
	State     ReservationState `json:"State"`
	// AccountID is the owner: a customer, or a company when AccountType
	// says so.
	AccountID          string      `json:"AccountId,omitempty"`
	AccountType        AccountType `json:"AccountType,omitempty"`
	AssignedResourceID string      `json:"AssignedResourceId,omitempty"`
	ScheduledStartUtc  time.Time   `json:"ScheduledStartUtc"`
	ActualStartUtc     *time.Time  `json:"ActualStartUtc,omitempty"`
	ScheduledEndUtc    time.Time   `json:"ScheduledEndUtc"`
	ActualEndUtc       *time.Time  `json:"ActualEndUtc,omitempty"`
	CreatedUtc         time.Time   `json:"CreatedUtc"`
	UpdatedUtc         time.Time   `json:"UpdatedUtc"`
}

// Resource is a bookable space: a room, or a bed in a room.
type Resource struct {
	ID       string `json:"Id"`
	Name     string `json:"Name"`
	State    string `json:"State,omitempty"`
	IsActive bool   `json:"IsActive"`
	// ParentResourceID is the space this one is part of (a bed's room).
	ParentResourceID string          `json:"ParentResourceId,omitempty"`
	Data             json.RawMessage `json:"Data,omitempty"`
}

// Companionship is a person on a reservation: its owner, or a guest
// travelling with the owner. A company-owned reservation's guests are all
// companions.
type Companionship struct {
	ID            string `json:"Id"`
	CustomerID    string `json:"CustomerId"`
	ReservationID string `json:"ReservationId,omitempty"`
}

// Customer is a guest profile.
type Customer struct {
	ID        string `json:"Id"`
	FirstName string `json:"FirstName,omitempty"`
	LastName  string `json:"LastName"`
	Email     string `json:"Email,omitempty"`
	Phone     string `json:"Phone,omitempty"`
}

// AccessTokenType is the kind of a resource access token.
type AccessTokenType string

// Resource access token types.
const (
	AccessTokenPinCode AccessTokenType = "PinCode"
	AccessTokenRfidTag AccessTokenType = "RfidTag"
)

// Permissions says what a resource access token opens.
type Permissions struct {
	Bed      bool `json:"Bed"`
	Room     bool `json:"Room"`
	Floor    bool `json:"Floor"`
	Building bool `json:"Building"`
}

// ResourceAccessToken is Mews's record of a key issued for a reservation.
type ResourceAccessToken struct {
	ID             string          `json:"Id,omitempty"`
	EnterpriseID   string          `json:"EnterpriseId,omitempty"`
	ServiceOrderID string          `json:"ServiceOrderId"`
	ResourceID     string          `json:"ResourceId,omitempty"`
	Type           AccessTokenType `json:"Type"`
	Value          string          `json:"Value"`
	SerialNumber   string          `json:"SerialNumber,omitempty"`
	// CompanionshipID marks a companion's own key.
	CompanionshipID  string       `json:"CompanionshipId,omitempty"`
	ValidityStartUtc time.Time    `json:"ValidityStartUtc"`
	ValidityEndUtc   time.Time    `json:"ValidityEndUtc"`
	Permissions      *Permissions `json:"Permissions,omitempty"`
	IsActive         bool         `json:"IsActive,omitempty"`
}
