package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"

	"github.com/rs/zerolog"
)

// unitPath is where kardianos/service writes the unit; the .deb ships its
// unit in /lib/systemd/system instead.
const unitPath = "/etc/systemd/system/" + Name + ".service"

// prepareInstall creates the system user the unit runs as, the same way the
// .deb's postinst does. A DynamicUser= unit was the alternative, but a
// dynamic user cannot be in the group that may read the 0640 config and
// token files, so it would push operators to make secrets world-readable.
func prepareInstall(configPath string, log zerolog.Logger) error {
	if _, err := user.Lookup(Name); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/var/lib/"+Name, "--shell", "/usr/sbin/nologin", Name).CombinedOutput()
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return fmt.Errorf("create system user %s: useradd not found; create the user and group %s yourself", Name, Name)
			}
			return fmt.Errorf("create system user %s: %w: %s", Name, err, out)
		}
		log.Info().Str("user", Name).Msg("created system user for the service")
	}
	if msg := configReadable(configPath); msg != "" {
		log.Warn().Str("config", configPath).Msg(msg)
	}
	return nil
}

// configReadable says, in words, why the service user could not read the
// config file, or returns "" when it can.
func configReadable(configPath string) string {
	fi, err := os.Stat(configPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "the config file does not exist yet; the service will not start until it does"
	}
	if err != nil {
		return "cannot check the config file: " + err.Error()
	}
	group, err := user.LookupGroup(Name)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	mode := fi.Mode().Perm()
	if mode&0o004 != 0 || (strconv.Itoa(int(st.Gid)) == group.Gid && mode&0o040 != 0) {
		return ""
	}
	return fmt.Sprintf("the service runs as user %s and cannot read this file: run 'chgrp %s %s && chmod 0640 %s' (and the same for token files)",
		Name, Name, configPath, configPath)
}

// checkUninstall refuses to remove a unit that the package manager owns:
// kardianos would only delete its own copy in /etc/systemd/system.
func checkUninstall() error {
	if _, err := os.Stat(unitPath); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s was installed by the package manager; remove it with 'apt remove %s'", Name, Name)
	}
	return nil
}
