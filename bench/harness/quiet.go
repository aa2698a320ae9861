package harness

import (
	"math"
	"os"
	"strconv"
	"time"
)

// Quiet is the noise gate of anchorlib.py. Before each repetition it
// waits, up to Timeout, until the whole machine is less than Max busy
// over Window; during the repetition it measures the foreign CPU load
// (all CPU time the machine spent minus this process's own, over wall
// time times CPUs); a repetition whose foreign load is above Max is run
// again, up to Retries times, and the last try is kept and counted as
// contaminated. Where the machine's load cannot be read (not Linux), the
// gate does nothing and the loads read -1.
type Quiet struct {
	Max     float64
	Timeout time.Duration
	Retries int
	Window  time.Duration
}

// QuietFromEnv returns the gate anchorlib.py uses, with its settings from
// the same environment variables: ANCHOR_QUIET_MAX (default 0.05),
// ANCHOR_QUIET_TIMEOUT (seconds, default 300) and ANCHOR_MAX_RETRIES
// (default 4).
func QuietFromEnv() Quiet {
	return Quiet{
		Max:     envFloat("ANCHOR_QUIET_MAX", 0.05),
		Timeout: time.Duration(envFloat("ANCHOR_QUIET_TIMEOUT", 300) * float64(time.Second)),
		Retries: int(envFloat("ANCHOR_MAX_RETRIES", 4)),
		Window:  500 * time.Millisecond,
	}
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

// waitQuiet waits until the machine is quiet or the timeout passes.
func (q Quiet) waitQuiet() {
	if q.Max >= 1 {
		return
	}
	start := time.Now()
	for {
		b0, t0, ok := machineCPU()
		if !ok {
			return
		}
		time.Sleep(q.Window)
		b1, t1, _ := machineCPU()
		if (b1-b0)/math.Max(t1-t0, 1e-9) < q.Max || time.Since(start) > q.Timeout {
			return
		}
	}
}

// minLoadWall is the shortest repetition whose foreign load reps measures:
// ten ticks of /proc/stat's clock.
const minLoadWall = 0.1

// reps runs runOnce reps times behind the gate and summarises its values.
func (q Quiet) reps(reps int, runOnce func() float64) *Result {
	r := &Result{}
	for range reps {
		var v, load float64
		for attempt := 0; ; attempt++ {
			q.waitQuiet()
			b0, _, ok := machineCPU()
			o0 := ownCPU()
			w0 := time.Now()
			v = runOnce()
			wall := time.Since(w0).Seconds()
			load = -1
			// /proc/stat counts in ticks of 10 ms: over a shorter
			// repetition one tick of another program reads as a load of
			// several machines, so such a load is left unknown.
			if b1, _, ok1 := machineCPU(); ok && ok1 && wall >= minLoadWall {
				foreign := math.Max(0, (b1-b0)-(ownCPU()-o0))
				load = math.Round(foreign/math.Max(wall*float64(numCPU), 1e-9)*1000) / 1000
			}
			if load <= q.Max || attempt >= q.Retries {
				break
			}
		}
		r.Values = append(r.Values, v)
		r.ForeignLoad = append(r.ForeignLoad, load)
		if load > q.Max {
			r.ContaminatedReps++
		}
	}
	r.Median = median(r.Values)
	r.Min, r.Max = r.Values[0], r.Values[0]
	for _, v := range r.Values {
		r.Min, r.Max = math.Min(r.Min, v), math.Max(r.Max, v)
	}
	return r
}
