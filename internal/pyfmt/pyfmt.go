// Package pyfmt formats numbers as Python prints them, so that the lines
// puad prints and the files it writes (results.txt, eval's report) read
// exactly as the reference implementation's do.
package pyfmt

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Float formats v as Python's repr(float) does: the shortest digits that
// read back as v, in positional notation for 1e-4 <= |v| < 1e16 (with at
// least one decimal, "1.0"), otherwise as d.ddde±XX; "nan", "inf", "-inf".
func Float(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(v, 'e', -1, 64) // d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}
