package journal

// PutLegacyFirstKey writes a first-key record as versions before room sets
// did, for tests of the upgrade.
func PutLegacyFirstKey(j *Journal, reservationID, raw string) error {
	return j.setMeta(firstKeyPrefix+reservationID, []byte(raw))
}
