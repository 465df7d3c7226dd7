package atomicfile

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
)

var (
	umaskOnce sync.Once
	umask     os.FileMode = 0o022
)

// currentUmask is the process's umask, read once from /proc/self/status
// (so no other goroutine's files are ever created under a changed umask);
// where that is not available, the usual 022.
func currentUmask() os.FileMode {
	umaskOnce.Do(func() {
		f, err := os.Open("/proc/self/status")
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					umask = os.FileMode(m)
				}
				return
			}
		}
	})
	return umask
}
