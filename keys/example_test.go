package keys_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mews-keyd/mews-keyd/keys"
	_ "github.com/mews-keyd/mews-keyd/keys/sim" // registers "sim"
)

// The configuration loader's part, in short: find the driver named in the
// encoder's table, decode the table into the driver's own config, validate,
// open.
func Example() {
	d, ok := keys.Lookup("sim")
	if !ok {
		fmt.Println("no such driver; known:", keys.Drivers())
		return
	}
	cfg := d.NewConfig()
	if _, err := toml.Decode(`delay = "1ms"`, cfg); err != nil {
		fmt.Println(err)
		return
	}
	if v, ok := cfg.(keys.Validator); ok {
		if err := v.Validate(); err != nil {
			fmt.Println(err)
			return
		}
	}
	enc, err := d.Open(cfg, keys.Env{Name: "frontdesk", Timeout: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer enc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := enc.Issue(ctx, keys.Request{Kind: keys.KindCard, Rooms: []string{"0101"}, KeyCount: 2})
	if err != nil {
		fmt.Println(keys.Message(err))
		return
	}
	fmt.Println(res.Note)
	_, canRevoke := enc.(keys.Revoker)
	fmt.Println("can revoke:", canRevoke)
	// Output:
	// 2 keys issued for room 0101 (simulated)
	// can revoke: true
}

// An error says whether a card may exist despite it; only when it certainly
// does not may the operation be offered again.
func ExampleMaybeCut() {
	refused := keys.Failf("no card presented within %ds", 60)
	lost := &keys.Error{Msg: "lost the connection to the encoder server", MaybeCut: true, Err: errors.New("connection reset")}
	for _, err := range []error{refused, lost} {
		fmt.Printf("%s (may be cut: %v)\n", keys.Message(err), keys.MaybeCut(err))
	}
	// Output:
	// no card presented within 60s (may be cut: false)
	// lost the connection to the encoder server (may be cut: true)
}
