package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed rewrites argv so that flags written after positional
// arguments (`puad eval DATA MODELS --json out.json`) are seen by urfave/cli,
// which stops parsing flags at the first positional argument. Flags of the
// subcommand move in front of its positional arguments; "--" ends flags.
func interspersed(app *cli.App, argv []string) []string {
	if len(argv) < 2 {
		return argv
	}
	// Find the subcommand (the first argument naming one, after global flags).
	idx := -1
	var cmd *cli.Command
	for i := 1; i < len(argv); i++ {
		if strings.HasPrefix(argv[i], "-") {
			continue
		}
		cmd = app.Command(argv[i])
		idx = i
		break
	}
	if cmd == nil {
		return argv
	}
	// Walk nested subcommands (e.g. `train teacher`).
	for idx+1 < len(argv) {
		sub := cmd.Command(argv[idx+1])
		if sub == nil {
			break
		}
		cmd, idx = sub, idx+1
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	rest := argv[idx+1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue[name] && i+1 < len(rest) {
			flags = append(flags, rest[i+1])
			i++
		}
	}
	out := append([]string{}, argv[:idx+1]...)
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}
