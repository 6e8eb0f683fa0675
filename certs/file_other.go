//go:build !unix

package certs

import (
	"fmt"
	"os"

	"github.com/mqttstack/mqttstack/internal/atomicfile"
)

func writeFileAtomic(path string, data []byte, mode uint32) error {
	if err := atomicfile.Write(path, data, os.FileMode(mode)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeFileInPlace(path string, data []byte, mode uint32) error {
	if err := os.WriteFile(path, data, os.FileMode(mode)); err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
