// Package nomodels declares no model function at all.
package nomodels

import "github.com/cnnc/cnnc/ir"

// Width is not a model.
const Width = 28

// builder is unexported.
func builder() *ir.Graph { return ir.NewBuilder("net", 8).Graph() }
