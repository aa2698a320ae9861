package ir

import (
	"path/filepath"
	"strings"
)

// TrimPaths rewrites every position in g that lies under the directory
// dir, on its nodes and on the errors the builder recorded, as a
// slash-separated path relative to dir; other positions stay as they are.
// Golden tests and tools call it so that what they print does not depend
// on where the module lives: with dir the module root,
// "/home/ann/cnnc/models/lenet5/model.go" becomes "models/lenet5/model.go".
func (g *Graph) TrimPaths(dir string) {
	for _, n := range g.Nodes {
		if n != nil {
			n.Pos.File = trimPath(n.Pos.File, dir)
		}
	}
	for i, e := range g.errs {
		c := *e // a clone of g shares the errors
		c.Pos.File = trimPath(e.Pos.File, dir)
		g.errs[i] = &c
	}
}

func trimPath(file, dir string) string {
	d := strings.TrimRight(filepath.ToSlash(dir), "/")
	f := filepath.ToSlash(file)
	if d == "" || !strings.HasPrefix(f, d+"/") {
		return file
	}
	return f[len(d)+1:]
}
