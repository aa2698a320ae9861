package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the want.txt files of testdata/badmodels")

// moduleRoot returns the absolute path of cnnc's module root.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	return dir
}

// cnnc runs the command line in-process and returns its exit status,
// stdout and stderr.
func cnnc(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestBadModels runs `cnnc compile [args.txt] model.go` in every folder of
// testdata/badmodels and compares what it prints with the folder's
// want.txt.
func TestBadModels(t *testing.T) {
	root := moduleRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "testdata", "badmodels", "*", "model.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Chdir(dir)
			args := []string{"compile", "-o", t.TempDir()}
			if data, err := os.ReadFile("args.txt"); err == nil {
				args = append(args, strings.Fields(string(data))...)
			}
			args = append(args, "model.go")
			code, stdout, stderr := cnnc(t, args...)
			assert.Equal(t, 1, code, "exit status")
			assert.Empty(t, stdout)
			if *update {
				require.NoError(t, os.WriteFile("want.txt", []byte(stderr), 0o644))
				return
			}
			want, err := os.ReadFile("want.txt")
			require.NoError(t, err)
			assert.Equal(t, string(want), stderr, "to accept the new output, run: go test ./cmd/cnnc -run TestBadModels -update")
		})
	}
}

func TestUsage(t *testing.T) {
	lenet := filepath.Join(moduleRoot(t), "models", "lenet5", "model.go")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring
		stderr     string // substring
		noStderr   bool
		exactStdou string
	}{
		{name: "no args", args: nil, code: 2, stderr: "Usage:\n\n\tcnnc <command> [flags] [arguments]"},
		{name: "help", args: []string{"-h"}, code: 0, stdout: "\tcompile   compile a model into a Go package", noStderr: true},
		{name: "help compile", args: []string{"help", "compile"}, code: 0, stdout: "usage: cnnc compile [-o dir]", noStderr: true},
		{name: "unknown command", args: []string{"build"}, code: 2, stderr: "cnnc: unknown command \"build\""},
		{name: "compile -h", args: []string{"compile", "-h"}, code: 0, stdout: "  -pkg name\n", noStderr: true},
		{name: "train -h", args: []string{"train", "-h"}, code: 0, stdout: "usage: cnnc train", noStderr: true},
		{name: "dump -h", args: []string{"dump", "-h"}, code: 0, stdout: "\ttrain    verify, autodiff", noStderr: true},
		{name: "version -h", args: []string{"version", "-h"}, code: 0, stdout: "usage: cnnc version", noStderr: true},
		{name: "compile without file", args: []string{"compile"}, code: 2, stderr: "cnnc compile: name a model file, such as model.go\nusage: cnnc compile"},
		{name: "compile two files", args: []string{"compile", "a.go", "b.go"}, code: 2, stderr: "want one model file, got 2 arguments: a.go b.go"},
		{name: "compile bad flag", args: []string{"compile", "-x", "model.go"}, code: 2, stderr: "cnnc compile: flag provided but not defined: -x"},
		{name: "compile bad pkg", args: []string{"compile", "-pkg", "func", "-func", "LeNet5", lenet}, code: 2, stderr: "-pkg \"func\" is not a Go package name"},
		{name: "compile extra", args: []string{"compile", lenet, "--", "-epochs", "1"}, code: 2, stderr: "unexpected arguments after --: -epochs 1"},
		{name: "dump unknown pass", args: []string{"dump", "-after", "nope", lenet}, code: 2, stderr: "train pipeline has no pass \"nope\"; its passes are verify, autodiff"},
		{name: "dump unknown pipeline", args: []string{"dump", "-pipeline", "eval", lenet}, code: 2, stderr: "unknown pipeline \"eval\"; the pipelines are train and infer"},
		{name: "version", args: []string{"version"}, code: 0, exactStdou: "cnnc devel " + runtime.Version() + "\n", noStderr: true},
		{name: "version args", args: []string{"version", "x"}, code: 2, stderr: "version takes no arguments"},
		{name: "missing file", args: []string{"compile", "nope.go"}, code: 1, stderr: "cnnc: load model: stat nope.go: no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cnnc(t, tt.args...)
			assert.Equal(t, tt.code, code, "exit status; stderr:\n%s", stderr)
			assert.Contains(t, stdout, tt.stdout)
			assert.Contains(t, stderr, tt.stderr)
			if tt.noStderr {
				assert.Empty(t, stderr)
			}
			if tt.exactStdou != "" {
				assert.Equal(t, tt.exactStdou, stdout)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args            []string
		wantFn, wantOut string
		wantPos         []string
		wantExtra       []string
	}{
		{args: []string{"-func", "F", "m.go"}, wantFn: "F", wantPos: []string{"m.go"}},
		{args: []string{"m.go", "-func", "F", "-o", "d"}, wantFn: "F", wantOut: "d", wantPos: []string{"m.go"}},
		{args: []string{"m.go", "-func", "F", "--", "-epochs", "1"}, wantFn: "F", wantPos: []string{"m.go"}, wantExtra: []string{"-epochs", "1"}},
		{args: []string{"--", "m.go"}, wantExtra: []string{"m.go"}},
		{args: []string{"a.go", "b.go"}, wantPos: []string{"a.go", "b.go"}},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fn := fs.String("func", "", "")
		out := fs.String("o", "", "")
		pos, extra, err := parseArgs(fs, tt.args)
		require.NoError(t, err, "%q", tt.args)
		assert.Equal(t, tt.wantFn, *fn, "%q", tt.args)
		assert.Equal(t, tt.wantOut, *out, "%q", tt.args)
		assert.Equal(t, tt.wantPos, pos, "%q", tt.args)
		assert.Equal(t, tt.wantExtra, extra, "%q", tt.args)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	header := "// Code generated by cnnc from m.go:F. DO NOT EDIT.\n"
	files := map[string][]byte{
		"a_gen.go":          []byte(header + "package a\n"),
		"cmd/train/main.go": []byte(header + "package main\n"),
	}
	changed, err := writeFiles(dir, files)
	require.NoError(t, err)
	assert.Equal(t, []string{"a_gen.go", "cmd/train/main.go"}, changed)

	// Unchanged files are not written again.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "a_gen.go"), old, old))
	changed, err = writeFiles(dir, files)
	require.NoError(t, err)
	assert.Empty(t, changed)
	fi, err := os.Stat(filepath.Join(dir, "a_gen.go"))
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(old), "unchanged file was rewritten")

	// A file cnnc generated earlier and no longer does is removed; the
	// user's own files stay.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old_gen.go"), []byte(header+"package a\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mine.go"), []byte("package a\n"), 0o644))
	files["a_gen.go"] = []byte(header + "package a\n\nvar X int\n")
	changed, err = writeFiles(dir, files)
	require.NoError(t, err)
	assert.Equal(t, []string{"a_gen.go", "old_gen.go (removed)"}, changed)
	assert.FileExists(t, filepath.Join(dir, "mine.go"))
	assert.NoFileExists(t, filepath.Join(dir, "old_gen.go"))
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	assert.Empty(t, left)

	for _, bad := range []string{"../x.go", "/abs.go", "a/../b.go", ""} {
		_, err := writeFiles(dir, map[string][]byte{bad: nil})
		assert.Error(t, err, "file name %q", bad)
	}
}

func TestImportPathOf(t *testing.T) {
	root := moduleRoot(t)
	tests := []struct{ dir, want string }{
		{root, "github.com/cnnc/cnnc"},
		{filepath.Join(root, "gen", "lenet5"), "github.com/cnnc/cnnc/gen/lenet5"},
		{filepath.Join(root, "not", "there", "yet"), "github.com/cnnc/cnnc/not/there/yet"},
	}
	for _, tt := range tests {
		got, err := importPathOf(tt.dir)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
	assert.Equal(t, "example.com/m", modulePath([]byte("// c\nmodule \"example.com/m\" // x\n\ngo 1.26\n")))
	assert.Equal(t, "", modulePath([]byte("go 1.26\nmodulex y\n")))
	assert.Equal(t, "lenet5", packageName("LeNet5"))
	assert.Equal(t, "lenet_5", packageName("lenet-_5"))
	assert.Equal(t, "", packageName("5"))
}

// tempInModule returns a new directory inside cnnc's module, ignored by
// ./... patterns, removed when the test ends.
func tempInModule(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(moduleRoot(t), "_cnnc-test-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestCompileLeNet5 compiles LeNet-5 into a package inside the module,
// checks that a second compile writes nothing, and builds the package
// and its trainer.
func TestCompileLeNet5(t *testing.T) {
	root := moduleRoot(t)
	out := filepath.Join(tempInModule(t), "lenet5")
	model := filepath.Join(root, "models", "lenet5", "model.go")
	code, stdout, stderr := cnnc(t, "compile", "-v", "-func", "LeNet5", "-o", out, model)
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "cnnc: own work (graph to files)")
	assert.Contains(t, stderr, "wrote "+filepath.Join(out, "model_gen.go"))
	for _, f := range []string{"model_gen.go", "kernels_gen.go", "cmd/train/main.go", "model.cu", "model_cuda_gen.go"} {
		data, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(f)))
		require.NoError(t, err)
		first, _, _ := strings.Cut(string(data), "\n")
		assert.Regexp(t, generatedHeader, first, f)
		assert.Contains(t, first, "models/lenet5/model.go:LeNet5", f)
	}
	data, err := os.ReadFile(filepath.Join(out, "model_gen.go"))
	require.NoError(t, err)
	assert.Contains(t, string(data), "\npackage lenet5\n")

	code, _, stderr = cnnc(t, "compile", "-v", "-func", "LeNet5", "-o", out, model)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "is up to date")

	main, err := os.ReadFile(filepath.Join(out, "cmd", "train", "main.go"))
	require.NoError(t, err)
	assert.Contains(t, string(main), "trainer.Main(lenet5.NewSeeded, trainer.WithCUDA(lenet5.NewCUDASeeded))")

	// Without cgo, as on a machine without CUDA.
	goBuild := func() {
		t.Helper()
		build := exec.Command("go", "build", "./...")
		build.Dir = out
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		msg, err := build.CombinedOutput()
		require.NoError(t, err, "go build of the generated package:\n%s", msg)
	}
	goBuild()

	// -cuda-tf32 puts the convolutions on the tensor cores, for GPUs of
	// compute capability 8.0 and later.
	code, _, stderr = cnnc(t, "compile", "-cuda-tf32", "-func", "LeNet5", "-o", out, model)
	require.Equal(t, 0, code, stderr)
	cu, err := os.ReadFile(filepath.Join(out, "model.cu"))
	require.NoError(t, err)
	assert.Contains(t, string(cu), "cnnc_gemm_tile_tf32(g,")
	gen, err := os.ReadFile(filepath.Join(out, "model_cuda_gen.go"))
	require.NoError(t, err)
	assert.Contains(t, string(gen), "Capability: 80,")
	goBuild()

	// -cuda=false writes the CPU package only and removes the CUDA files.
	code, _, stderr = cnnc(t, "compile", "-v", "-cuda=false", "-func", "LeNet5", "-o", out, model)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "model.cu (removed)")
	assert.Contains(t, stderr, "model_cuda_gen.go (removed)")
	assert.NoFileExists(t, filepath.Join(out, "model.cu"))
	assert.NoFileExists(t, filepath.Join(out, "model_cuda_gen.go"))
	main, err = os.ReadFile(filepath.Join(out, "cmd", "train", "main.go"))
	require.NoError(t, err)
	assert.Contains(t, string(main), "trainer.Main(lenet5.NewSeeded)\n")
	goBuild()
}

func TestDump(t *testing.T) {
	model := filepath.Join(moduleRoot(t), "models", "lenet5", "model.go")

	code, stdout, stderr := cnnc(t, "dump", "-after", "autodiff", "-func", "LeNet5", model)
	require.Equal(t, 0, code, stderr)
	assert.True(t, strings.HasPrefix(stdout, "# after autodiff\ngraph lenet5 batch=64\n"), stdout)
	assert.Contains(t, stdout, "\nv0 = input [64,1,28,28]")
	assert.Contains(t, stdout, "conv2d")

	code, stdout, stderr = cnnc(t, "dump", "-after", "all", "-pipeline", "infer", "-json", "-func", "LeNet5", model)
	require.Equal(t, 0, code, stderr)
	var passes []string
	s := bufio.NewScanner(strings.NewReader(stdout))
	s.Buffer(nil, 1<<24)
	for s.Scan() {
		var v struct {
			After string `json:"after"`
			Graph struct {
				Name  string            `json:"name"`
				Nodes []json.RawMessage `json:"nodes"`
			} `json:"graph"`
		}
		require.NoError(t, json.Unmarshal(s.Bytes(), &v))
		assert.Equal(t, "lenet5", v.Graph.Name)
		assert.NotEmpty(t, v.Graph.Nodes)
		passes = append(passes, v.After)
	}
	require.NotEmpty(t, passes)
	assert.Equal(t, "verify", passes[0])

	code, stdout, stderr = cnnc(t, "dump", "-stats", "-func", "LeNet5BN", model)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	assert.Regexp(t, `^pipeline +pass +nodes +kernels +arena floats +arena bytes +unplanned floats +unplanned bytes$`, lines[0])
	assert.Len(t, lines, 1+len(passesOf("train"))+len(passesOf("infer")), stdout)
	assert.Regexp(t, `(?m)^infer +fuse-activation +\d+ +\d+ +\d+ +[0-9.]+ MiB +\d+ +[0-9.]+ MiB$`, stdout)

	code, stdout, stderr = cnnc(t, "dump", "-stats", "-json", "-pipeline", "infer", "-func", "LeNet5BN", model)
	require.Equal(t, 0, code, stderr)
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var row map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &row))
		rows = append(rows, row)
	}
	require.Len(t, rows, len(passesOf("infer")))
	last := rows[len(rows)-1]
	assert.Equal(t, "infer", last["pipeline"])
	assert.Equal(t, 4*last["arenaFloats"].(float64), last["arenaBytes"])
	assert.Less(t, last["kernels"], rows[1]["kernels"], "fusion removes kernels")

	code, _, stderr = cnnc(t, "dump", "-stats", "-after", "dce", "-func", "LeNet5BN", model)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "-stats reports every pass; leave out -after")

	code, _, stderr = cnnc(t, "dump", "-func", "Nope", model)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "cnnc: load model: package lenet5 has no function Nope")
}

// TestUserProject copies testdata/userproject, a module of its own that
// uses cnnc as a user would, runs go generate ./... and then go run . in
// it, offline: the module cache and go.sum come from cnnc's own module.
func TestUserProject(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cnnc and a generated package: skipped with -short")
	}
	root := moduleRoot(t)
	// The offline commands below need every module of cnnc's build list
	// in the module cache, which building cnnc's packages does not fetch
	// on a fresh machine (the go.mod files of avo's requirements).
	download := exec.Command("go", "mod", "download", "all")
	download.Dir = root
	downloaded, err := download.CombinedOutput()
	require.NoError(t, err, "go mod download all:\n%s", downloaded)
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(root, "testdata", "userproject"))))
	os.RemoveAll(filepath.Join(dir, "net"))

	// Point the replace directive at this module, and take go.sum lines
	// for cnnc's dependencies from cnnc's own go.sum.
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	gomod = bytes.Replace(gomod, []byte("=> ../.."), []byte("=> "+root), 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644))
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	require.NoError(t, err)
	rootSum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), append(sum, rootSum...), 0o644))

	env := append(os.Environ(),
		"GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"),
		"GOPROXY=off",
		"GOWORK=off",
	)
	goCmd := func(args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	goCmd("generate", "./...")
	assert.FileExists(t, filepath.Join(dir, "net", "model_gen.go"))
	out := goCmd("run", ".")
	assert.Regexp(t, `loss \d+\.\d+ -> \d+\.\d+\nOK\n$`, out)
}

// TestTrain compiles the linear softmax classifier into a temporary
// package, builds its trainer and trains it for one epoch on a few
// images.
func TestTrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a trainer: skipped with -short")
	}
	root := moduleRoot(t)
	t.Chdir(t.TempDir()) // the trainer runs here
	model := filepath.Join(root, "models", "linear", "model.go")
	code, stdout, stderr := cnnc(t, "train", model, "-func", "Softmax", "--", "-epochs", "1", "-limit", "256", "-save", "", "-quiet")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "final test accuracy")
	left, _ := filepath.Glob(filepath.Join(root, "models", "linear", "_cnnc-train-*"))
	assert.Empty(t, left, "generated package left behind")

	// The trainer's own mistakes come back as its exit status.
	code, _, stderr = cnnc(t, "train", "-func", "Softmax", model, "--", "-epochs", "-1")
	assert.NotZero(t, code, stderr)
	assert.Contains(t, stderr, "-epochs")
	assert.NotContains(t, stderr, "cnnc: ", "cnnc adds nothing to the trainer's message")
}

// passesOf returns the names of the passes of the named pipeline.
func passesOf(name string) []string {
	p, err := findPipeline(name)
	if err != nil {
		panic(err)
	}
	return p.Names()
}
