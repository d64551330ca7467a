// Command mews-keyd connects a hotel's lock system to Mews: see README.md.
package main

import (
	"context"
	"os"
)

// version is stamped by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(NewMain(os.Stdout, os.Stderr).Run(context.Background(), os.Args[1:]))
}
