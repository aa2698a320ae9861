package passes

import (
	"fmt"
	"io"
	"strings"

	"github.com/cnnc/cnnc/ir"
)

// A Pass is a named rewrite of a graph.
type Pass struct {
	Name string
	Fn   func(*ir.Graph) error
}

// A Pipeline is an ordered list of passes.
type Pipeline struct {
	Name   string
	Passes []Pass
}

// Options controls how a pipeline runs.
type Options struct {
	// NoVerify skips validating the graph after every pass. Verification
	// is on by default: it is cheap next to code generation.
	NoVerify bool
	// DumpAfter names passes after which the graph is printed to Dump, in
	// its text form; "all" prints after every pass.
	DumpAfter []string
	Dump      io.Writer
	// After, if set, is called with the graph after every pass (after
	// verification, unless NoVerify); an error stops the pipeline.
	After func(pass string, g *ir.Graph) error
}

// Run applies the pipeline to a copy of g and returns the result. The
// input graph is left as it was.
func (p Pipeline) Run(g *ir.Graph, opts Options) (*ir.Graph, error) {
	for _, name := range opts.DumpAfter {
		if name != "all" && p.index(name) < 0 {
			return nil, fmt.Errorf("%s pipeline has no pass %q; its passes are %s", p.Name, name, strings.Join(p.Names(), ", "))
		}
	}
	g = g.Clone()
	for _, pass := range p.Passes {
		if err := pass.Fn(g); err != nil {
			return nil, fmt.Errorf("%s: %w", pass.Name, err)
		}
		if !opts.NoVerify {
			if err := g.Validate(); err != nil {
				return nil, fmt.Errorf("graph is invalid after pass %s (a bug in cnnc): %w", pass.Name, err)
			}
		}
		if opts.Dump != nil && dumpAfter(opts.DumpAfter, pass.Name) {
			fmt.Fprintf(opts.Dump, "# after %s\n%s\n", pass.Name, g)
		}
		if opts.After != nil {
			if err := opts.After(pass.Name, g); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

// Names lists the pipeline's passes in order.
func (p Pipeline) Names() []string {
	names := make([]string, len(p.Passes))
	for i, pass := range p.Passes {
		names[i] = pass.Name
	}
	return names
}

func (p Pipeline) index(name string) int {
	for i, pass := range p.Passes {
		if pass.Name == name {
			return i
		}
	}
	return -1
}

func dumpAfter(names []string, pass string) bool {
	for _, n := range names {
		if n == pass || n == "all" {
			return true
		}
	}
	return false
}
