// Command render-unit prints the systemd unit that the Debian package ships,
// rendered by the same code as 'mews-keyd install'.
package main

import (
	"fmt"
	"os"

	"github.com/mews-keyd/mews-keyd/install"
)

func main() {
	unit, err := install.SystemdUnit(install.PackageExecutable, install.PackageConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render-unit:", err)
		os.Exit(1)
	}
	fmt.Print(unit)
}
