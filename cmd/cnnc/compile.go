package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cnnc/cnnc/codegen/cuda"
	"github.com/cnnc/cnnc/codegen/gocode"
	"github.com/cnnc/cnnc/internal/load"
	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/passes"
)

// runtimePath is the import path of the package generated code links
// against.
const runtimePath = "github.com/cnnc/cnnc/runtime"

var compileCmd = &command{
	name:  "compile",
	short: "compile a model into a Go package and its trainer",
	usage: "compile [-o dir] [-pkg name] [-cuda=false] [-cuda-tf32] [-func name] [-batch n] [-tags tags] [-v] model.go",
	long: `Compile loads the model function of model.go, differentiates and optimises
its graph, and writes a Go package for it into dir: model_gen.go (the Model
type: New, TrainStep, Predict, Load, Save), kernels_gen.go, and the trainer
program cmd/train/main.go. Files that did not change are left alone.

Unless -cuda=false, the package also holds the model for NVIDIA GPUs:
model.cu, the CUDA C of its kernels, and model_cuda_gen.go, which embeds it
and declares the CUDAModel type (NewCUDA, TrainStep, Predict, SGDStep, ...).
The CUDA driver and NVRTC are loaded when a program asks for a GPU, so the
package builds everywhere, without cgo or CUDA; the trainer's -device cuda
uses it. With -cuda-tf32 the convolutions multiply on the tensor cores
(three TF32 products a term, to float32's accuracy), which needs a GPU of
compute capability 8.0 or later.

In a model package, a generate.go file with a line such as

	//go:generate go run github.com/cnnc/cnnc/cmd/cnnc compile -o ../../gen/net model.go

makes 'go generate ./...' rewrite the package.
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env) error {
		var c compileFlags
		c.register(fs)
		return c.run
	},
}

type compileFlags struct {
	modelFlags
	out  string
	pkg  string
	cuda bool // write the CUDA target's files too
	tf32 bool // convolutions on the tensor cores
}

func (c *compileFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.out, "o", "", "output `directory` (default: ./<func> in lower case)")
	fs.StringVar(&c.pkg, "pkg", "", "`name` of the generated package (default: the output directory's name)")
	fs.BoolVar(&c.cuda, "cuda", true, "also write the model for NVIDIA GPUs (model.cu, model_cuda_gen.go); -cuda=false writes the CPU package only")
	fs.BoolVar(&c.tf32, "cuda-tf32", false, "run the GPU model's convolutions on the tensor cores, as TF32 products split to float32's accuracy (compute capability 8.0 and later)")
	c.modelFlags.register(fs)
}

func (c *compileFlags) run(ctx context.Context, e *env) error {
	file, err := oneModel(e)
	if err != nil {
		return err
	}
	if err := noExtra(e); err != nil {
		return err
	}
	if c.pkg != "" && (!token.IsIdentifier(c.pkg) || token.IsKeyword(c.pkg)) {
		return usagef("-pkg %q is not a Go package name", c.pkg)
	}
	t := newTimer(c.log(e))
	m, err := c.load(ctx, e, file)
	if err != nil {
		return err
	}
	t.step("load model")
	out := c.out
	if out == "" {
		out = "." + string(filepath.Separator) + strings.ToLower(m.Func)
	}
	own := time.Now()
	files, err := c.generate(m, out)
	if err != nil {
		return err
	}
	t.step("passes and codegen")
	changed, err := writeFiles(out, files)
	if err != nil {
		return err
	}
	t.step("write files")
	if t.w != nil {
		fmt.Fprintf(t.w, "cnnc: %-24s %6.1f ms\n", "own work (graph to files)", ms(time.Since(own)))
		t.total("total")
		for _, f := range changed {
			fmt.Fprintf(t.w, "cnnc: wrote %s\n", filepath.Join(out, filepath.FromSlash(f)))
		}
		if len(changed) == 0 {
			fmt.Fprintf(t.w, "cnnc: %s is up to date\n", out)
		}
	}
	return nil
}

// generate runs the pipelines on the model's graph and renders the files
// of a package for it, to be written into dir.
func (c *compileFlags) generate(m *load.Model, dir string) (map[string][]byte, error) {
	train, infer, err := pipelines(m)
	if err != nil {
		return nil, err
	}
	pkg := c.pkg
	if pkg == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		pkg = packageName(filepath.Base(abs))
		if pkg == "" {
			return nil, usagef("%s is not a Go package name; choose one with -pkg", filepath.Base(abs))
		}
	}
	importPath, err := importPathOf(dir)
	if err != nil {
		return nil, err
	}
	source := m.SourceName + ":" + m.Func
	files, err := gocode.Generate(train, infer, gocode.Config{
		Package:    pkg,
		ImportPath: importPath,
		Runtime:    runtimePath,
		Source:     source,
		CUDA:       c.cuda,
	})
	if err != nil {
		return nil, fmt.Errorf("generate code for %s: %w", m.Func, err)
	}
	if c.cuda {
		cudaFiles, err := cuda.Generate(train, infer, cuda.Config{Package: pkg, Source: source, TF32: c.tf32})
		if err != nil {
			return nil, fmt.Errorf("generate CUDA code for %s: %w; pass -cuda=false to write the CPU package only", m.Func, err)
		}
		for name, b := range cudaFiles {
			if files[name] != nil {
				return nil, fmt.Errorf("the Go and CUDA targets both generate %s (a bug in cnnc)", name)
			}
			files[name] = b
		}
	}
	return files, nil
}

// pipelines checks that the model can be trained and makes its training
// and inference graphs.
func pipelines(m *load.Model) (train, infer *ir.Graph, err error) {
	if err := m.Graph.ValidateTraining(); err != nil {
		return nil, nil, err
	}
	train, err = passes.Train.Run(m.Graph, passes.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("train pipeline: %w", err)
	}
	infer, err = passes.Infer.Run(m.Graph, passes.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("infer pipeline: %w", err)
	}
	return train, infer, nil
}

// packageName makes a package name from a directory name: lower case,
// letters, digits and underscores; "" if there is none.
func packageName(dir string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(dir) {
		if r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9' && b.Len() > 0) {
			b.WriteRune(r)
		}
	}
	name := b.String()
	if !token.IsIdentifier(name) || token.IsKeyword(name) {
		return ""
	}
	return name
}

// generatedHeader matches the first line of a file cnnc generated.
var generatedHeader = regexp.MustCompile(`^// Code generated by cnnc.*DO NOT EDIT\.$`)

// writeFiles writes files (relative slash paths to contents) into dir,
// creating directories as needed and leaving alone the files whose
// content did not change. Files cnnc generated earlier in the same
// directories that are no longer generated are removed. It returns the
// paths it wrote or removed, in order.
func writeFiles(dir string, files map[string][]byte) ([]string, error) {
	names := make([]string, 0, len(files))
	dirs := map[string]bool{}
	for name := range files {
		clean := filepath.ToSlash(filepath.Clean(filepath.FromSlash(name)))
		if name == "" || filepath.IsAbs(name) || clean != name || clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, fmt.Errorf("code generator returned a file named %q, want a relative path inside the package (a bug in cnnc)", name)
		}
		names = append(names, name)
		dirs[filepath.Dir(filepath.FromSlash(name))] = true
	}
	sort.Strings(names)
	var changed []string
	for _, name := range names {
		path := filepath.Join(dir, filepath.FromSlash(name))
		data := files[name]
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return changed, err
		}
		if err := writeFile(path, data); err != nil {
			return changed, err
		}
		changed = append(changed, name)
	}
	// Remove stale generated files, such as an assembly file of a target
	// that no longer applies.
	for d := range dirs {
		entries, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil {
			return changed, err
		}
		for _, ent := range entries {
			name := filepath.ToSlash(filepath.Join(d, ent.Name()))
			if !ent.Type().IsRegular() || files[name] != nil {
				continue
			}
			path := filepath.Join(dir, d, ent.Name())
			if generatedByCnnc(path) {
				if err := os.Remove(path); err != nil {
					return changed, err
				}
				changed = append(changed, name+" (removed)")
			}
		}
	}
	return changed, nil
}

// writeFile replaces the file at path with data, atomically where the
// system allows.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// generatedByCnnc reports whether the file at path starts with cnnc's
// generated-code header.
func generatedByCnnc(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	return s.Scan() && generatedHeader.MatchString(s.Text())
}

// importPathOf returns the import path that the package in dir (which
// need not exist yet) will have: the path of the module whose go.mod is
// in dir or above it, joined with dir's place in the module.
func importPathOf(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for root := abs; ; {
		data, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err == nil {
			mod := modulePath(data)
			if mod == "" {
				return "", fmt.Errorf("%s has no module directive", filepath.Join(root, "go.mod"))
			}
			rel, err := filepath.Rel(root, abs)
			if err != nil {
				return "", err
			}
			if rel == "." {
				return mod, nil
			}
			return mod + "/" + filepath.ToSlash(rel), nil
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("output directory %s is not inside a Go module; run 'go mod init' or choose another with -o", dir)
		}
		root = parent
	}
}

// modulePath returns the module path that a go.mod file declares, or "".
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t' && rest[0] != '"') {
			continue
		}
		rest, _, _ = strings.Cut(rest, "//")
		rest = strings.TrimSpace(rest)
		if uq, err := strconv.Unquote(rest); err == nil {
			rest = uq
		}
		return rest
	}
	return ""
}
