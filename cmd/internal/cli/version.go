package cli

import (
	"runtime"
	"runtime/debug"
)

// VersionString returns "winchester <version> (<revision>[, modified])
// <go version>": version is the one set at build time (-ldflags "-X
// main.version=v1.2.3"), or, when empty, the module's from the build
// information ("devel" without one).
func VersionString(version string) string {
	v, rev, modified := version, "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	out := "winchester " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified {
			rev += ", modified"
		}
		out += " (" + rev + ")"
	}
	return out + " " + runtime.Version()
}
