package mews_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/mews-keyd/mews-keyd/mews"
	"github.com/mews-keyd/mews-keyd/mews/mewstest"
)

// A key command's life: staff press "cut key", the client fetches the
// command, cuts the key and reports the outcome.
func ExampleClient() {
	srv := mewstest.NewServer() // in production: mews.Production.API and the property's tokens
	defer srv.Close()

	client, err := mews.NewClient(mews.ClientConfig{
		APIURL:      srv.URL(),
		ClientToken: mewstest.ClientToken,
		AccessToken: mewstest.AccessToken,
		Client:      "mews-keyd 1.0.0",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	// What Mews does when a receptionist presses "cut key".
	id, err := client.AddKeyCutterCommand(ctx, mews.AddKeyCutterCommand{
		KeyCutterID: mewstest.KeyCutter1.ID, ReservationID: mewstest.ReservationCheckedIn, KeyCount: 2})
	if err != nil {
		log.Fatal(err)
	}

	cmds, err := client.ActiveCommands(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, cmd := range cmds {
		key, err := cmd.KeyCutter()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d keys for room %s, guest %s\n", cmd.State, key.KeyCount, key.LockIDs[0], key.NormalizedLastName)
	}

	err = client.UpdateCommand(ctx, mews.CommandUpdate{ID: id, State: mews.CommandProcessed, Notes: "2 keys for room 101"})
	if err != nil {
		log.Fatal(err)
	}

	// A final state cannot change: Mews refuses with 403.
	err = client.UpdateCommand(ctx, mews.CommandUpdate{ID: id, State: mews.CommandError, Notes: "too late"})
	fmt.Println(errors.Is(err, mews.ErrForbidden), mews.Retryable(err))
	fmt.Println(srv.StateHistory(id))
	// Output:
	// Pending: 2 keys for room 101, guest Novak
	// true false
	// [Pending Received Processed]
}
