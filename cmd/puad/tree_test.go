package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/puad-go/puad/evaluate/report"
)

// testRoot is a temporary folder shared by the tests of this package, made
// in TestMain and removed after the tests.
var testRoot string

func TestMain(m *testing.M) {
	// The test binary doubles as the puad program for tests that check exit
	// statuses and stderr (see runPuad).
	if args := os.Getenv("PUAD_TEST_MAIN_ARGS"); args != "" {
		os.Args = append([]string{"puad"}, strings.Split(args, "\x1f")...)
		main()
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "puad-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loco is the dataset folder name of MVTec LOCO AD.
const loco = report.LOCODataset
