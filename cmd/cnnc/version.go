package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// cnncModule is the path of cnnc's module.
const cnncModule = "github.com/cnnc/cnnc"

var versionCmd = &command{
	name:  "version",
	short: "print cnnc's version",
	usage: "version",
	long:  "Version prints cnnc's module version (\"devel\" when built from a working tree)\nand the Go version that built it.\n",
	flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
		return func(_ context.Context, e *env) error {
			if len(e.args) > 0 || len(e.extra) > 0 {
				return usagef("version takes no arguments")
			}
			_, err := fmt.Fprintf(e.stdout, "cnnc %s %s\n", version(), runtime.Version())
			return err
		}
	},
}

// version returns cnnc's module version, with the VCS revision when the
// build recorded one, or "devel".
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	// cnnc is the main module when built in its own tree, and a
	// dependency when a user's project runs it with go run.
	mod := &bi.Main
	for _, d := range bi.Deps {
		if d.Path == cnncModule {
			mod = d
			if d.Replace != nil {
				mod = d.Replace
			}
		}
	}
	v := mod.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if v == "devel" && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += "-" + rev + dirty
	}
	return v
}
