package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed rewrites argv so that flags written after positional
// arguments (`puad eval DATA MODELS --json out.json`) are seen by urfave/cli,
// which stops parsing flags at the first positional argument. Flags of the
// subcommand move in front of its positional arguments; global flags found
// after the verb (`puad eval DATA MODELS --threads 2`) move in front of the
// verb, unless the subcommand has a flag of the same name; "--" ends flags.
func interspersed(app *cli.App, argv []string) []string {
	if len(argv) < 2 {
		return argv
	}
	// Find the subcommand (the first argument naming one, after global flags).
	idx, verb := -1, -1
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
		idx, verb = i, i
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
	global, flags, pos := splitArgs(argv[idx+1:], flagsTakingValues(cmd.Flags), globalValue)
	out := append([]string{}, argv[:verb]...)
	out = append(out, global...)
	out = append(out, argv[verb:idx+1]...)
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}

// splitArgs sorts the arguments after a subcommand into global flags, the
// subcommand's flags (each with its value) and positional arguments.
// takesValue and globalValue map the flag names of the subcommand and of
// the program to whether they take a value.
func splitArgs(rest []string, takesValue, globalValue map[string]bool) (global, flags, pos []string) {
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
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		dst, value := &flags, takesValue[name]
		if _, own := takesValue[name]; !own {
			if gv, ok := globalValue[name]; ok {
				dst, value = &global, gv
			}
		}
		*dst = append(*dst, a)
		if value && !hasValue && i+1 < len(rest) {
			*dst = append(*dst, rest[i+1])
			i++
		}
	}
	return global, flags, pos
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
