package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cnnc/cnnc/internal/load"
)

// modelFlags are the flags of every command that loads a model.
type modelFlags struct {
	fn      string
	tags    string
	batch   int
	verbose bool
}

func (f *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.fn, "func", "", "model `function` to load (default: the file's only one)")
	fs.StringVar(&f.tags, "tags", "", "comma-separated build `tags` for loading the model and building its program")
	fs.IntVar(&f.batch, "batch", 0, "compile for batches of up to `n` samples instead of the model's own batch size")
	fs.BoolVar(&f.verbose, "v", false, "print what cnnc does and how long each step takes")
}

// buildFlags returns the flags for the go command.
func (f *modelFlags) buildFlags() []string {
	if f.tags == "" {
		return nil
	}
	return []string{"-tags=" + f.tags}
}

// log returns where -v output goes: stderr, or nowhere.
func (f *modelFlags) log(e *env) io.Writer {
	if f.verbose {
		return e.stderr
	}
	return nil
}

// load loads the model in file, with the batch size of -batch if it is
// set.
func (f *modelFlags) load(ctx context.Context, e *env, file string) (*load.Model, error) {
	if f.batch < 0 {
		return nil, usagef("-batch %d: want a positive batch size (or 0 for the model's own)", f.batch)
	}
	cfg := load.Config{
		Func:       f.fn,
		BuildFlags: f.buildFlags(),
		Stderr:     e.stderr,
		Log:        f.log(e),
	}
	m, err := cfg.Load(ctx, file)
	if err != nil || f.batch == 0 {
		return m, err
	}
	g, err := m.Graph.WithBatch(f.batch)
	if err != nil {
		return nil, fmt.Errorf("-batch %d: %w", f.batch, err)
	}
	m.Graph = g
	return m, nil
}

// A timer prints how long steps take when -v is on.
type timer struct {
	w     io.Writer
	start time.Time
	last  time.Time
}

func newTimer(w io.Writer) *timer {
	now := time.Now()
	return &timer{w: w, start: now, last: now}
}

// step reports the time since the previous step.
func (t *timer) step(what string) {
	now := time.Now()
	if t.w != nil {
		fmt.Fprintf(t.w, "cnnc: %-24s %6.1f ms\n", what, ms(now.Sub(t.last)))
	}
	t.last = now
}

// total reports the time since the timer started.
func (t *timer) total(what string) {
	if t.w != nil {
		fmt.Fprintf(t.w, "cnnc: %-24s %6.1f ms\n", what, ms(time.Since(t.start)))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// joinNames formats names as "a, b and c".
func joinNames(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
