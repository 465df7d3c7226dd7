//go:build unix

package datasets

import "syscall"

// openNoBlock keeps open(2) from waiting for a writer when the path turns
// out to be a named pipe; it changes nothing for regular files.
const openNoBlock = syscall.O_NONBLOCK
