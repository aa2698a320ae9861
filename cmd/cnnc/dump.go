package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/passes"
)

var dumpCmd = &command{
	name:  "dump",
	short: "print a model's graph after any pass",
	usage: "dump [-after pass|all | -stats] [-pipeline train|infer] [-json] [-func name] [-tags tags] model.go",
	long: `Dump loads the model function of model.go, runs a pipeline of passes on its
graph and prints the graph after the named pass (after the last one by
default; -after all prints it after every pass), in the text form or, with
-json, as JSON (one object per line with -after all: {"after": pass, "graph": ...}).

With -stats, dump prints instead a table of what the graph costs after
every pass of every pipeline (or of the one -pipeline names): its nodes,
the kernels one run launches (nodes that are not leaves, constants or
reshapes), and the peak activation memory, the arena of the memory plan
in floats and bytes, beside what the values would take without sharing
memory (unplanned). With -json, one object per line instead.

The pipelines and their passes:

` + pipelineList(),
	flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
		var d dumpFlags
		fs.StringVar(&d.after, "after", "", "print the graph after this `pass`, or after every pass with \"all\" (default: the last pass)")
		fs.StringVar(&d.pipeline, "pipeline", "", "`pipeline` to run: "+strings.Join(pipelineNames(), " or ")+" (default train; with -stats, every pipeline)")
		fs.BoolVar(&d.json, "json", false, "print JSON instead of the text form")
		fs.BoolVar(&d.stats, "stats", false, "print node and kernel counts and peak memory after every pass instead of the graph")
		d.modelFlags.register(fs)
		return d.run
	},
}

type dumpFlags struct {
	modelFlags
	after    string
	pipeline string
	json     bool
	stats    bool
}

func pipelineNames() []string {
	var names []string
	for _, p := range passes.Pipelines {
		names = append(names, p.Name)
	}
	return names
}

func pipelineList() string {
	var b strings.Builder
	for _, p := range passes.Pipelines {
		fmt.Fprintf(&b, "\t%-8s %s\n", p.Name, strings.Join(p.Names(), ", "))
	}
	return b.String()
}

func (d *dumpFlags) run(ctx context.Context, e *env) error {
	file, err := oneModel(e)
	if err != nil {
		return err
	}
	if err := noExtra(e); err != nil {
		return err
	}
	if d.stats {
		return d.runStats(ctx, e, file)
	}
	p, err := findPipeline(cmp.Or(d.pipeline, passes.Train.Name))
	if err != nil {
		return err
	}
	after := d.after
	if after == "" && len(p.Passes) > 0 {
		after = p.Passes[len(p.Passes)-1].Name
	}
	if after != "all" && !contains(p.Names(), after) {
		return usagef("%s pipeline has no pass %q; its passes are %s (or all)", p.Name, after, strings.Join(p.Names(), ", "))
	}

	m, err := d.load(ctx, e, file)
	if err != nil {
		return err
	}
	if p.Name == passes.Train.Name {
		if err := m.Graph.ValidateTraining(); err != nil {
			return err
		}
	}
	if !d.json {
		_, err := p.Run(m.Graph, passes.Options{DumpAfter: []string{after}, Dump: e.stdout})
		return err
	}
	// For JSON, print the graph as each wanted pass leaves it.
	var emitErr error
	wrapped := passes.Pipeline{Name: p.Name}
	for _, pass := range p.Passes {
		fn, name := pass.Fn, pass.Name
		wrapped.Passes = append(wrapped.Passes, passes.Pass{Name: name, Fn: func(g *ir.Graph) error {
			if err := fn(g); err != nil {
				return err
			}
			if emitErr == nil && (after == "all" || after == name) {
				emitErr = d.emitJSON(e, name, after == "all", g)
			}
			return nil
		}})
	}
	if _, err := wrapped.Run(m.Graph, passes.Options{}); err != nil {
		return err
	}
	return emitErr
}

func findPipeline(name string) (*passes.Pipeline, error) {
	for i := range passes.Pipelines {
		if passes.Pipelines[i].Name == name {
			return &passes.Pipelines[i], nil
		}
	}
	return nil, usagef("unknown pipeline %q; the pipelines are %s", name, joinNames(pipelineNames()))
}

// passStats is one row of dump -stats.
type passStats struct {
	Pipeline       string `json:"pipeline"`
	Pass           string `json:"pass"`
	Nodes          int    `json:"nodes"`
	Kernels        int    `json:"kernels"`
	ArenaFloats    int    `json:"arenaFloats"`
	ArenaBytes     int    `json:"arenaBytes"`
	UnplannedFloat int    `json:"unplannedFloats"`
	UnplannedBytes int    `json:"unplannedBytes"`
}

// runStats prints the cost of the graph after every pass of the chosen
// pipelines.
func (d *dumpFlags) runStats(ctx context.Context, e *env, file string) error {
	if d.after != "" {
		return usagef("-stats reports every pass; leave out -after")
	}
	pipelines := passes.Pipelines
	if d.pipeline != "" {
		p, err := findPipeline(d.pipeline)
		if err != nil {
			return err
		}
		pipelines = []passes.Pipeline{*p}
	}
	m, err := d.load(ctx, e, file)
	if err != nil {
		return err
	}
	var rows []passStats
	for _, p := range pipelines {
		if p.Name == passes.Train.Name {
			if err := m.Graph.ValidateTraining(); err != nil {
				return err
			}
		}
		_, stats, err := p.Profile(m.Graph, passes.Options{})
		if err != nil {
			return err
		}
		for _, s := range stats {
			rows = append(rows, passStats{p.Name, s.Pass, s.Nodes, s.Kernels,
				s.Arena, s.ArenaBytes(), s.Unplanned, s.UnplannedBytes()})
		}
	}
	if d.json {
		for _, r := range rows {
			data, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(e.stdout, "%s\n", data); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "pipeline\tpass\tnodes\tkernels\tarena floats\tarena bytes\tunplanned floats\tunplanned bytes\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\n", r.Pipeline, r.Pass, r.Nodes, r.Kernels,
			r.ArenaFloats, bytesString(r.ArenaBytes), r.UnplannedFloat, bytesString(r.UnplannedBytes))
	}
	return tw.Flush()
}

// bytesString formats n bytes with a binary unit: "1.44 MiB".
func bytesString(n int) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func (d *dumpFlags) emitJSON(e *env, pass string, tagged bool, g *ir.Graph) error {
	var v any = g
	if tagged {
		v = struct {
			After string    `json:"after"`
			Graph *ir.Graph `json:"graph"`
		}{pass, g}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode the graph after %s: %w", pass, err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", data)
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
