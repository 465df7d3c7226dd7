// Package atomicfile is puad's one way of writing an output file: the data
// goes to a temporary file in the destination's directory, is flushed to
// disk, and is renamed over the destination, so a reader never sees a
// partial file and an interrupted write leaves the previous version in
// place. The temporary file is removed on every failure path.
//
// A destination that exists and is not a regular file (a symbolic link, a
// FIFO, a device such as /dev/stdout) is never replaced: the data is
// written through to it instead, since renaming over it would destroy the
// link or node and the data would never reach its target.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultPerm is the permission of the files puad writes: readable by
// others (0644 under the usual umask 022).
const DefaultPerm os.FileMode = 0o644

// WriteFile writes data to path atomically with permission perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write creates path atomically with permission perm from what fill writes.
// Missing parent directories are created (0755). The file and its directory
// are synced before Write returns, so a finished write survives a crash.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	if err := write(path, perm, fill); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func write(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return writeThrough(path, fill)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		// A link to a regular file: replace the target, keep the link.
		return writeThrough(path, fill)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPattern(filepath.Base(path)))
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	// CreateTemp makes the file private (0600); chmod is not subject to the umask.
	if err := f.Chmod(perm &^ currentUmask()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// writeThrough writes into an existing non-regular file (or through a
// symbolic link) without replacing it.
func writeThrough(path string, fill func(w io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		// Character devices and FIFOs cannot always be truncated.
		f, err = os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
	}
	bw := bufio.NewWriter(f)
	if err := fill(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir flushes a directory entry to disk; file systems that cannot sync
// directories are not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	d.Sync()
	return nil
}

// tempPattern is the name pattern of the temporary file of a write to
// path's base name.
func tempPattern(name string) string { return "." + name + ".tmp-*" }

// RemoveTemps removes the temporary files that writes to the given file
// names in dir left when their process was killed. Only call it while no
// other process writes those files (e.g. under a lock of dir).
func RemoveTemps(dir string, names ...string) error {
	for _, name := range names {
		found, err := filepath.Glob(filepath.Join(dir, tempPattern(name)))
		if err != nil {
			return err
		}
		for _, p := range found {
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				if err := os.Remove(p); err != nil {
					return fmt.Errorf("remove stale %s: %w", p, err)
				}
			}
		}
	}
	return nil
}
