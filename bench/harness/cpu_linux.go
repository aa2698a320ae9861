package harness

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// userHZ is the unit of /proc/stat: USER_HZ, 100 on every Linux
// architecture Go runs on.
const userHZ = 100

var numCPU = runtime.NumCPU()

// machineCPU returns the seconds of CPU time the whole machine has been
// busy (user, nice, system, irq, softirq, steal) and in total, from
// /proc/stat, as anchorlib.py reads them.
func machineCPU() (busy, total float64, ok bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, false
	}
	v := make([]float64, 8)
	for i := range v {
		x, err := strconv.ParseFloat(f[i+1], 64)
		if err != nil {
			return 0, 0, false
		}
		v[i] = x
	}
	b := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return b / userHZ, (b + v[3] + v[4]) / userHZ, true
}

// ownCPU returns the CPU seconds this process has used, all threads.
func ownCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// cpuName returns the processor's model name from /proc/cpuinfo.
func cpuName() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
