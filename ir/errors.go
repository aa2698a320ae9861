package ir

import (
	"fmt"
	"sort"
	"strings"
)

// An Error is a mistake in a graph, reported where the user made it:
// model.go:14: conv2d "conv2": input has 6 channels, the layer expects 16.
type Error struct {
	Pos   Pos    // the user's line, if known
	Op    Op     // the op of the node at fault, if any
	Layer string // the user's layer name, if any
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.IsValid() {
		b.WriteString(e.Pos.String())
		b.WriteString(": ")
	}
	if e.Op != OpInvalid {
		b.WriteString(e.Op.String())
		if e.Layer != "" {
			fmt.Fprintf(&b, " %q", e.Layer)
		}
		b.WriteString(": ")
	} else if e.Layer != "" {
		fmt.Fprintf(&b, "%q: ", e.Layer)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// An ErrorList is a list of errors, reported together.
type ErrorList []*Error

// Error prints the first few errors, one per line, and how many more
// there are.
func (l ErrorList) Error() string {
	const most = 10
	var b strings.Builder
	for i, e := range l {
		if i == most {
			fmt.Fprintf(&b, "\n(and %d more errors)", len(l)-most)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns l as an error, or nil if l is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// sortByPos orders the errors by file and line, keeping the order of
// errors on the same line.
func (l ErrorList) sortByPos() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
}

// errorAt returns an Error for node n.
func errorAt(n *Node, format string, args ...any) *Error {
	return &Error{Pos: n.Pos, Op: n.Op, Layer: n.Layer, Msg: fmt.Sprintf(format, args...)}
}
