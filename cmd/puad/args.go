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
	globalValue := flagsTakingValues(app.Flags)
	for i := 1; i < len(argv); i++ {
		if strings.HasPrefix(argv[i], "-") {
			name := strings.TrimLeft(argv[i], "-")
			if !strings.Contains(name, "=") && globalValue[name] {
				i++ // the global flag's value
			}
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
	takesValue := flagsTakingValues(cmd.Flags)
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

// flagsTakingValues maps each name of flags to whether it takes a value
// (every flag but a boolean one).
func flagsTakingValues(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}
