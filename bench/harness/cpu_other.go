//go:build !linux

package harness

import "runtime"

var numCPU = runtime.NumCPU()

// machineCPU reports that the machine's load cannot be read here.
func machineCPU() (busy, total float64, ok bool) { return 0, 0, false }

func ownCPU() float64 { return 0 }

func cpuName() string { return "" }
