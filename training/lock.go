package training

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/puad-go/puad/models"
)

// LockFile is the file a training run holds locked in its output folder,
// so that a second run in the same folder stops at once.
const LockFile = ".train.lock"

// runFiles are the files a run in a folder writes through
// internal/atomicfile; temporary files of theirs left by a killed run are
// removed when the next run starts.
var runFiles = append(append([]string{CheckpointFile, models.ManifestFile}, models.CategoryFiles...), models.TeacherFiles...)

// lockDir takes dir's lock (an advisory lock released when the process
// ends, even when killed) and returns its release.
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, newRunError(ErrLocked, "another training run is writing to %s", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
