package pyfmt

import (
	"math"
	"testing"
)

// The expected strings are Python 3's repr of the same floats.
func TestFloat(t *testing.T) {
	for v, want := range map[float64]string{
		1: "1.0", 0.75: "0.75", 0.8731428571428571: "0.8731428571428571", 1e-05: "1e-05", 0.0001: "0.0001",
		1e16: "1e+16", 1234567.0: "1234567.0", 0: "0.0", -2.5e-7: "-2.5e-07", 1.5e300: "1.5e+300",
		9999999999999998: "9999999999999998.0", 0.00012345: "0.00012345", math.Inf(1): "inf", math.Inf(-1): "-inf",
		-1: "-1.0", 123456789012345680000: "1.2345678901234568e+20",
	} {
		if got := Float(v); got != want {
			t.Errorf("Float(%v) = %q, want %q", v, got, want)
		}
	}
	if got := Float(math.NaN()); got != "nan" {
		t.Errorf("Float(NaN) = %q, want nan", got)
	}
}
