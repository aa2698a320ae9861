//go:build !linux

package runtime

import "os"

// isTerminal reports whether f is a character device, which on these
// systems is almost always a terminal.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
