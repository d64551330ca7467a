package journal

import (
	"fmt"
	"time"
)

// Digital keys keep one record per reservation, encoded by their pipeline
// (the journal stores it as it is given), and the newest UpdatedUtc a
// catch-up has seen.
const (
	digitalPrefix = "digital/"
	// digitalWatermarkKey must not start with digitalPrefix.
	digitalWatermarkKey = "digital-watermark"
)

// DigitalRecord returns the reservation's digital key record, or nil.
func (j *Journal) DigitalRecord(reservationID string) ([]byte, error) {
	return j.getMeta(digitalPrefix + reservationID)
}

// PutDigitalRecord stores the reservation's record; it is on disk when
// PutDigitalRecord returns nil.
func (j *Journal) PutDigitalRecord(reservationID string, raw []byte) error {
	return j.setMeta(digitalPrefix+reservationID, raw)
}

// DeleteDigitalRecord removes the reservation's record, if any.
func (j *Journal) DeleteDigitalRecord(reservationID string) error {
	return j.deleteMeta(digitalPrefix + reservationID)
}

// DigitalRecords returns every record by reservation id.
func (j *Journal) DigitalRecords() (map[string][]byte, error) {
	entries, err := j.metaWithPrefix(digitalPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(entries))
	for key, raw := range entries {
		out[key[len(digitalPrefix):]] = raw
	}
	return out, nil
}

// DigitalWatermark returns the newest UpdatedUtc a digital key catch-up has
// seen (Mews's clock), or the zero time before the first.
func (j *Journal) DigitalWatermark() (time.Time, error) {
	raw, err := j.getMeta(digitalWatermarkKey)
	if err != nil || raw == nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, string(raw))
	if err != nil {
		return time.Time{}, fmt.Errorf("digital key watermark %q: %w", raw, err)
	}
	return t, nil
}

// SetDigitalWatermark records the newest UpdatedUtc a catch-up has seen.
func (j *Journal) SetDigitalWatermark(t time.Time) error {
	return j.setMeta(digitalWatermarkKey, []byte(t.UTC().Format(time.RFC3339Nano)))
}
