package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/passes"
)

var dumpCmd = &command{
	name:  "dump",
	short: "print a model's graph after any pass",
	usage: "dump [-after pass|all] [-pipeline train|infer] [-json] [-func name] [-tags tags] model.go",
	long: `Dump loads the model function of model.go, runs a pipeline of passes on its
graph and prints the graph after the named pass (after the last one by
default; -after all prints it after every pass), in the text form or, with
-json, as JSON (one object per line with -after all: {"after": pass, "graph": ...}).

The pipelines and their passes:

` + pipelineList(),
	flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
		var d dumpFlags
		fs.StringVar(&d.after, "after", "", "print the graph after this `pass`, or after every pass with \"all\" (default: the last pass)")
		fs.StringVar(&d.pipeline, "pipeline", "train", "`pipeline` to run: "+strings.Join(pipelineNames(), " or "))
		fs.BoolVar(&d.json, "json", false, "print JSON instead of the text form")
		d.modelFlags.register(fs)
		return d.run
	},
}

type dumpFlags struct {
	modelFlags
	after    string
	pipeline string
	json     bool
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
	var p *passes.Pipeline
	for i := range passes.Pipelines {
		if passes.Pipelines[i].Name == d.pipeline {
			p = &passes.Pipelines[i]
		}
	}
	if p == nil {
		return usagef("unknown pipeline %q; the pipelines are %s", d.pipeline, joinNames(pipelineNames()))
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
