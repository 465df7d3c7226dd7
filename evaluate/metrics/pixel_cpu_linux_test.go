//go:build linux

package metrics

import "syscall"

// pxCPUSeconds returns the user plus system CPU time of the process so far,
// so that the benchmark can compare work done on a machine shared with
// other jobs, where wall time says little.
func pxCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
