// Package atomicfile writes files so that a reader (or a crash) never sees
// half of one: data goes to a temporary file beside the target, which is then
// renamed into place.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path atomically with the given mode. The temporary
// file gets the mode before any byte is written, so a private key is never
// readable by others, not even for a moment.
func Write(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}
