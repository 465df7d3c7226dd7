//go:build !linux

package metrics

// pxCPUSeconds is not measured outside Linux.
func pxCPUSeconds() float64 { return 0 }
