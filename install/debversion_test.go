package install

import (
	"os/exec"
	"testing"
	"time"
)

func day(d int) time.Time { return time.Date(2026, 1, d, 9, 30, 0, 0, time.UTC) }

func TestDebVersion(t *testing.T) {
	for _, tt := range []struct {
		describe string
		commit   time.Time
		want     string
	}{
		{"v1.2.3", day(1), "1.2.3"},
		{"1.2.3", day(1), "1.2.3"},
		{"v1.3.0-rc1", day(1), "1.3.0~rc1"},
		{"v1.2.3-dirty", day(1), "1.2.3+dirty"},
		{"v1.2.3-4-gabc1234", day(2), "1.2.3+git20260102093000.abc1234"},
		{"v1.2.3-4-gabc1234-dirty", day(2), "1.2.3+git20260102093000.abc1234.dirty"},
		{"3247659", day(3), "0.0.0~git20260103093000.3247659"},
		{"abc1234-dirty", day(3), "0.0.0~git20260103093000.abc1234.dirty"},
		{"dev", day(3), "0.0.0~dev"},
		{"", day(3), "0.0.0~unknown"},
	} {
		if got := DebVersion(tt.describe, tt.commit); got != tt.want {
			t.Errorf("DebVersion(%q) = %q, want %q", tt.describe, got, tt.want)
		}
	}
}

// Later builds must install as upgrades: dpkg, the judge, must sort the
// versions of successive commits in commit order, whatever their hashes
// look like (a hash of digits used to become a huge version number).
func TestDebVersionsSortInCommitOrder(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not found; the order is not checked")
	}
	builds := []struct {
		describe string
		commit   time.Time
	}{
		{"3247659", day(1)},
		{"0abc123", day(2)},
		{"abc1234", day(3)},
		{"abc1234-dirty", day(3)},
		{"999ffff", day(4)},
		{"v0.9.0-rc1", day(5)},
		{"v0.9.0", day(6)},
		{"v0.9.0-dirty", day(6)},
		{"v0.9.0-3-g1234567", day(7)},
		{"v0.9.0-4-gabcdef0", day(8)},
		{"v0.10.0", day(9)},
	}
	for i := 1; i < len(builds); i++ {
		older := DebVersion(builds[i-1].describe, builds[i-1].commit)
		newer := DebVersion(builds[i].describe, builds[i].commit)
		if err := exec.Command(dpkg, "--compare-versions", older, "lt", newer).Run(); err != nil {
			t.Errorf("dpkg does not sort %s (%s) before %s (%s)", older, builds[i-1].describe, newer, builds[i].describe)
		}
	}
}
