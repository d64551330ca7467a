package install

import (
	"regexp"
	"strings"
	"time"
)

var (
	// describeSuffix is what git describe appends to a tag for the commits
	// after it: "-<count>-g<hash>".
	describeSuffix = regexp.MustCompile(`^(.+)-[0-9]+-g([0-9a-f]+)$`)
	// versionTag is a release tag: v1.2.3, 1.2.3, v1.3.0-rc1.
	versionTag = regexp.MustCompile(`^v?([0-9]+(\.[0-9]+)+(-[0-9A-Za-z.]+)?)$`)
	// bareHash is what git describe --always prints without a tag.
	bareHash = regexp.MustCompile(`^[0-9a-f]{7,40}$`)
	notInDeb = regexp.MustCompile(`[^0-9A-Za-z.+~]`)
)

// gitDateLayout orders builds to the second, in UTC.
const gitDateLayout = "20060102150405"

// DebVersion is the Debian package version of a build: describe is what
// `git describe --tags --always --dirty` printed, commit the commit's date.
// Versions come from tags; between tags, and before the first, the commit
// date orders builds, because a hash does not (3247659 used to be a huge
// version number, and its successor 0~abc1234 a downgrade):
//
//	v1.2.3                   1.2.3
//	v1.3.0-rc1               1.3.0~rc1                         (before 1.3.0)
//	v1.2.3-4-gabc1234        1.2.3+git20260102093000.abc1234
//	abc1234                  0.0.0~git20260102093000.abc1234   (before any release)
//
// and "-dirty" adds ".dirty" (or "+dirty" to a bare tag).
func DebVersion(describe string, commit time.Time) string {
	rest, dirty := strings.CutSuffix(describe, "-dirty")
	date := "git" + commit.UTC().Format(gitDateLayout)
	var version string
	if m := describeSuffix.FindStringSubmatch(rest); m != nil && versionTag.MatchString(m[1]) {
		version = tagVersion(m[1]) + "+" + date + "." + m[2]
	} else if versionTag.MatchString(rest) {
		version = tagVersion(rest)
		if dirty {
			return version + "+dirty"
		}
	} else if bareHash.MatchString(rest) {
		version = "0.0.0~" + date + "." + rest
	} else {
		// No git: "dev" or whatever the build was told.
		if rest = notInDeb.ReplaceAllString(rest, ""); rest == "" {
			rest = "unknown"
		}
		return "0.0.0~" + rest
	}
	if dirty {
		version += ".dirty"
	}
	return version
}

// tagVersion turns a release tag into a Debian version; a pre-release
// ("-rc1") sorts before its release ("~rc1").
func tagVersion(tag string) string {
	v := versionTag.FindStringSubmatch(tag)[1]
	return strings.Replace(v, "-", "~", 1)
}
