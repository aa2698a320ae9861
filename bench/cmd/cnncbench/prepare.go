package main

import (
	"bytes"
	"context"
	"fmt"
	"go/format"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// modulePath is cnnc's module, which holds the models and gen/.
const modulePath = "github.com/cnnc/cnnc"

// genDir is where cnncbench writes what it generates and builds, relative
// to the module root. Its name starts with "_", so ./... patterns (go
// build, vet, test) ignore it, and bench/.gitignore keeps it out of git.
const genDir = "bench/_gen"

// A benchModel is a model of models/ that cnncbench times.
type benchModel struct {
	name   string // cnnc's name: the package under gen/
	fn     string // model function
	file   string // model file, relative to the module root
	anchor string // the same model's name in torch_anchor.py
}

var zoo = []benchModel{
	{"lenet5", "LeNet5", "models/lenet5/model.go", "lenet"},
	{"lenet5bn", "LeNet5BN", "models/lenet5/model.go", "lenet_bn"},
	{"vggsmall", "VGGSmall", "models/vggsmall/model.go", "vgg_small"},
	{"mlp10", "MLP10", "models/mlp10/model.go", "mlp"},
}

// chooseModels returns the models a comma list names, all for "".
func chooseModels(list string) ([]benchModel, error) {
	if list == "" || list == "all" {
		return zoo, nil
	}
	var ms []benchModel
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, m := range zoo {
			if m.name == name {
				ms, found = append(ms, m), true
			}
		}
		if !found {
			var names []string
			for _, m := range zoo {
				names = append(names, m.name)
			}
			return nil, fmt.Errorf("unknown model %q; the models are %s", name, strings.Join(names, ", "))
		}
	}
	return ms, nil
}

// batches are the batch sizes timed: training, inference and latency
// (which is always 1).
type batches struct{ train, infer, latency int }

// moduleRoot returns the root of cnnc's module at or above dir.
func moduleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			if m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(data); m != nil && string(m[1]) == modulePath {
				return d, nil
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%s is not inside the module %s; run cnncbench in cnnc's repository or pass -root", dir, modulePath)
		}
		d = parent
	}
}

// A preparer compiles the models for the batch sizes to time and builds
// the program that times them.
type preparer struct {
	root  string
	fresh bool // compile the training batch too, even where gen/ has it
	log   io.Writer
}

// committedBatch returns the Batch of the package gen/<name>, or 0.
func (p *preparer) committedBatch(name string) int {
	data, err := os.ReadFile(filepath.Join(p.root, "gen", name, "model_gen.go"))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`(?m)^const Batch = (\d+)$`).FindSubmatch(data)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func (p *preparer) command(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = p.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if p.log != nil {
		fmt.Fprintf(p.log, "cnncbench: %s %s\n", filepath.Base(name), strings.Join(args, " "))
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, out.Bytes())
	}
	return nil
}

// prepare compiles every model for every batch size in b (the committed
// package of gen/ serves where it has that batch size, unless fresh),
// writes the timing program bench/_gen/cmd/run and builds it. It returns
// the program's path.
func (p *preparer) prepare(ctx context.Context, models []benchModel, b batches) (string, error) {
	gen := filepath.Join(p.root, filepath.FromSlash(genDir))
	cnnc := filepath.Join(gen, "bin", "cnnc")
	if err := p.command(ctx, "go", "build", "-o", cnnc, "./cmd/cnnc"); err != nil {
		return "", err
	}
	var prog runner
	imports := map[string]string{} // import path -> alias
	pkg := func(m benchModel, batch int) (string, error) {
		path := modulePath + "/gen/" + m.name
		if p.fresh || p.committedBatch(m.name) != batch {
			dir := fmt.Sprintf("%sb%d", m.name, batch) // gocode takes no "_" in package names
			path = modulePath + "/" + genDir + "/" + dir
			if _, ok := imports[path]; !ok {
				err := p.command(ctx, cnnc, "compile", "-batch", strconv.Itoa(batch), "-func", m.fn,
					"-o", filepath.Join(gen, dir), filepath.FromSlash(m.file))
				if err != nil {
					return "", err
				}
			}
		}
		if imports[path] == "" {
			imports[path] = fmt.Sprintf("p%d", len(imports))
			prog.Imports = append(prog.Imports, runnerImport{Alias: imports[path], Path: path})
		}
		return imports[path], nil
	}
	for _, m := range models {
		e := runnerModel{Name: m.name, Anchor: m.anchor}
		var err error
		if e.Train, err = pkg(m, b.train); err != nil {
			return "", err
		}
		if e.Infer, err = pkg(m, b.infer); err != nil {
			return "", err
		}
		if e.Latency, err = pkg(m, b.latency); err != nil {
			return "", err
		}
		prog.Models = append(prog.Models, e)
	}
	src, err := prog.render()
	if err != nil {
		return "", err
	}
	main := filepath.Join(gen, "cmd", "run", "main.go")
	if old, err := os.ReadFile(main); err != nil || !bytes.Equal(old, src) {
		if err := os.MkdirAll(filepath.Dir(main), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(main, src, 0o644); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(gen, "bin", "run")
	if err := p.command(ctx, "go", "build", "-o", bin, "./"+genDir+"/cmd/run"); err != nil {
		return "", err
	}
	return bin, nil
}

// A runner is the timing program: for each model, the aliases of the
// packages to train, infer and time the latency with.
type runner struct {
	Imports []runnerImport
	Models  []runnerModel
}

type runnerImport struct{ Alias, Path string }

type runnerModel struct {
	Name, Anchor          string
	Train, Infer, Latency string
}

var runnerTemplate = template.Must(template.New("run").Parse(`// Code generated by cnncbench. DO NOT EDIT.

// Command run times the models that cnncbench compiled, with package
// harness. cnncbench writes, builds and runs it; see bench/README.md.
package main

import (
	"github.com/cnnc/cnnc/bench/harness"
{{range .Imports}}	{{.Alias}} "{{.Path}}"
{{end}})

func main() {
	harness.Main([]harness.Model{
{{- range .Models}}
		{
			Name: {{printf "%q" .Name}}, Anchor: {{printf "%q" .Anchor}}, InputShape: {{.Train}}.InputShape(),
			Train: &harness.Variant{Batch: {{.Train}}.Batch, SampleSize: {{.Train}}.SampleSize, Classes: {{.Train}}.Classes, New: func() harness.Net { return {{.Train}}.New() }},
			Infer: &harness.Variant{Batch: {{.Infer}}.Batch, SampleSize: {{.Infer}}.SampleSize, Classes: {{.Infer}}.Classes, New: func() harness.Net { return {{.Infer}}.New() }},
			Latency: &harness.Variant{Batch: {{.Latency}}.Batch, SampleSize: {{.Latency}}.SampleSize, Classes: {{.Latency}}.Classes, New: func() harness.Net { return {{.Latency}}.New() }},
		},
{{- end}}
	})
}
`))

func (r *runner) render() ([]byte, error) {
	var b bytes.Buffer
	if err := runnerTemplate.Execute(&b, r); err != nil {
		return nil, err
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("format the timing program (a bug in cnncbench): %w\n%s", err, b.Bytes())
	}
	return src, nil
}
