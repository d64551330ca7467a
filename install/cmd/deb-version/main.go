// Command deb-version prints the Debian package version of a build (see
// install.DebVersion), for install/dist.sh:
//
//	deb-version DESCRIBE COMMIT_EPOCH
//
// DESCRIBE is what `git describe --tags --always --dirty` printed and
// COMMIT_EPOCH the commit's date in seconds since 1970.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/mews-keyd/mews-keyd/install"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: deb-version DESCRIBE COMMIT_EPOCH")
		os.Exit(2)
	}
	epoch, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "deb-version: commit date %q: %v\n", os.Args[2], err)
		os.Exit(2)
	}
	fmt.Println(install.DebVersion(os.Args[1], time.Unix(epoch, 0)))
}
