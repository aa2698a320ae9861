package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBatchFlag checks that -batch compiles a model for another batch
// size than its file declares.
func TestBatchFlag(t *testing.T) {
	model := filepath.Join(moduleRoot(t), "models", "lenet5", "model.go")

	code, stdout, _ := cnnc(t, "compile", "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "  -batch n\n")

	code, _, stderr := cnnc(t, "compile", "-batch", "-1", "-func", "LeNet5", model)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "-batch -1: want a positive batch size")

	code, stdout, stderr = cnnc(t, "dump", "-batch", "3", "-func", "LeNet5BN", model)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "\ngraph lenet5bn batch=3\n")
	assert.Contains(t, stdout, "\nv0 = input [3,1,28,28]")

	out := filepath.Join(tempInModule(t), "lenet5b7")
	code, _, stderr = cnnc(t, "compile", "-batch", "7", "-func", "LeNet5", "-o", out, model)
	require.Equal(t, 0, code, stderr)
	data, err := os.ReadFile(filepath.Join(out, "model_gen.go"))
	require.NoError(t, err)
	assert.Contains(t, string(data), "\nconst Batch = 7\n")
	assert.Contains(t, string(data), "\npackage lenet5b7\n")
}
