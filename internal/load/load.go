package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/tools/go/packages"

	"github.com/cnnc/cnnc/ir"
)

// irPath is the import path of the package whose *Graph a model function
// returns.
const irPath = "github.com/cnnc/cnnc/ir"

// Config says how to load a model. The zero Config loads the only model
// function of the file with the default build configuration.
type Config struct {
	// Func names the model function. If empty, the file must declare
	// exactly one.
	Func string
	// BuildFlags go to the go command, both to type-check the package
	// and to run the model function (-tags, -mod, ...).
	BuildFlags []string
	// Dir is the directory that file names in messages are relative to;
	// empty means the current directory.
	Dir string
	// Stderr receives what the model function itself prints; nil
	// discards it.
	Stderr io.Writer
	// Log, if not nil, receives one line per step with its duration.
	Log io.Writer
}

// A Model is a loaded model: its graph and where it came from.
type Model struct {
	Graph      *ir.Graph
	Func       string // the model function's name, such as "LeNet5"
	File       string // absolute path of the model file
	Dir        string // absolute directory of the model's package
	PkgPath    string // import path of the model's package
	PkgName    string // name of the model's package
	Module     string // path of the module that holds it, if any
	ModuleDir  string // root directory of that module, if any
	SourceName string // the model file relative to the module root, slash-separated
}

// Load loads the model function fn of the Go file named file (the only
// model function of the file if fn is empty), passing buildFlags to the
// go command, and returns its graph, validated.
func Load(ctx context.Context, file, fn string, buildFlags []string) (*ir.Graph, error) {
	m, err := Config{Func: fn, BuildFlags: buildFlags}.Load(ctx, file)
	if err != nil {
		return nil, err
	}
	return m.Graph, nil
}

// Load loads the model in file as c says. The graph it returns has passed
// [ir.Graph.Validate], and its positions are relative to c.Dir where that
// is shorter.
func (c Config) Load(ctx context.Context, file string) (*Model, error) {
	l := &loader{cfg: c, base: c.Dir}
	if l.base == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("load model: %w", err)
		}
		l.base = wd
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	fi, err := os.Stat(file)
	switch {
	case err != nil:
		return nil, fmt.Errorf("load model: %w", err)
	case fi.IsDir():
		return nil, fmt.Errorf("load model: %s is a directory; name the model's .go file", file)
	case !strings.HasSuffix(abs, ".go"):
		return nil, fmt.Errorf("load model: %s is not a .go file", file)
	}
	l.m = &Model{File: abs, Dir: filepath.Dir(abs)}

	start := time.Now()
	pkg, err := l.typecheck(ctx)
	l.logStep("type-check package", start)
	if err != nil {
		return nil, err
	}
	fn, err := l.findFunc(pkg)
	if err != nil {
		return nil, err
	}
	l.m.Func = fn

	start = time.Now()
	g, err := l.run(ctx)
	l.logStep("run "+fn, start)
	if err != nil {
		return nil, err
	}
	for _, n := range g.Nodes {
		n.Pos.File = l.rel(n.Pos.File)
	}
	if err := g.Validate(); err != nil {
		return nil, l.relErrors(err)
	}
	l.m.Graph = g
	return l.m, nil
}

type loader struct {
	cfg  Config
	base string // directory that messages are relative to
	m    *Model
}

func (l *loader) logStep(what string, start time.Time) {
	if l.cfg.Log != nil {
		fmt.Fprintf(l.cfg.Log, "cnnc: %-24s %6.1f ms\n", what, float64(time.Since(start).Microseconds())/1000)
	}
}

// typecheck loads and type-checks the package that holds the model file.
func (l *loader) typecheck(ctx context.Context) (*packages.Package, error) {
	cfg := &packages.Config{
		Context: ctx,
		// Syntax makes the package type-checked from source, for exact
		// positions; its dependencies come from export data.
		Mode:       packages.NeedName | packages.NeedFiles | packages.NeedTypes | packages.NeedSyntax | packages.NeedModule,
		Dir:        l.m.Dir,
		BuildFlags: l.cfg.BuildFlags,
	}
	pkgs, err := packages.Load(cfg, ".")
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	if len(pkgs) != 1 {
		return nil, fmt.Errorf("load model: the go command found %d packages in %s, want 1", len(pkgs), l.rel(l.m.Dir))
	}
	pkg := pkgs[0]
	name := l.rel(l.m.File)
	// The go command names files by its own path to them, which may
	// differ from the one given (symbolic links): use its name.
	f, inPkg := findFile(pkg.GoFiles, l.m.File)
	if inPkg {
		l.m.File = f
	}
	if _, ignored := findFile(pkg.IgnoredFiles, l.m.File); !inPkg && ignored {
		return nil, fmt.Errorf("load model: %s is excluded by build constraints; pass the build tags it needs with -tags", name)
	}
	if err := l.packageErrors(pkg); err != nil {
		return nil, err
	}
	if !inPkg {
		return nil, fmt.Errorf("load model: %s is not part of package %s", name, pkg.PkgPath)
	}
	if pkg.Name == "main" {
		return nil, fmt.Errorf("load model: %s is in package main, which cannot be imported; move the model into its own package", name)
	}
	if pkg.Types == nil {
		return nil, fmt.Errorf("load model: no type information for package %s (a bug in cnnc)", pkg.PkgPath)
	}
	l.m.PkgPath, l.m.PkgName = pkg.PkgPath, pkg.Name
	if pkg.Dir != "" {
		l.m.Dir = pkg.Dir
	}
	l.m.SourceName = filepath.Base(l.m.File)
	if pkg.Module != nil {
		l.m.Module, l.m.ModuleDir = pkg.Module.Path, pkg.Module.Dir
		if r, err := filepath.Rel(pkg.Module.Dir, l.m.File); err == nil && !strings.HasPrefix(r, "..") {
			l.m.SourceName = filepath.ToSlash(r)
		}
	}
	return pkg, nil
}

// packageErrors reports the errors the go command and the type checker
// found in pkg, each as file:line:col: message.
func (l *loader) packageErrors(pkg *packages.Package) error {
	// When the package does not compile, the go command reports the
	// compiler's output as one error, which the type checker's errors
	// repeat with better positions: keep those.
	errs := pkg.Errors
	var precise []packages.Error
	for _, e := range errs {
		if e.Kind != packages.ListError {
			precise = append(precise, e)
		}
	}
	if len(precise) > 0 {
		errs = precise
	}
	var msgs []string
	seen := map[string]bool{}
	for _, e := range errs {
		msg := e.Msg
		if pos := l.relPos(e.Pos); pos != "" {
			msg = pos + ": " + msg
		}
		if !seen[msg] {
			seen[msg] = true
			msgs = append(msgs, msg)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	const most = 10
	if len(msgs) > most {
		msgs = append(msgs[:most], fmt.Sprintf("(and %d more errors)", len(msgs)-most))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// relPos rewrites a go/packages position, file:line:col, file:line or
// file, with the file relative to the base directory.
func (l *loader) relPos(pos string) string {
	if pos == "" || pos == "-" {
		return ""
	}
	file, rest := pos, ""
	for range 2 {
		i := strings.LastIndexByte(file, ':')
		if i < 0 {
			break
		}
		if _, err := strconv.Atoi(file[i+1:]); err != nil {
			break
		}
		file, rest = file[:i], file[i:]+rest
	}
	return l.rel(file) + rest
}

// findFile returns the name in files of the file named file, which may
// be another name for the same file.
func findFile(files []string, file string) (string, bool) {
	for _, f := range files {
		if f == file {
			return f, true
		}
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", false
	}
	for _, f := range files {
		if fj, err := os.Stat(f); err == nil && os.SameFile(fi, fj) {
			return f, true
		}
	}
	return "", false
}

// findFunc picks the model function: the one named in the config, or
// the only one the file declares.
func (l *loader) findFunc(pkg *packages.Package) (string, error) {
	name := l.rel(l.m.File)
	scope := pkg.Types.Scope()
	var cands []*types.Func
	for _, n := range scope.Names() {
		f, ok := scope.Lookup(n).(*types.Func)
		if ok && f.Exported() && isModelFunc(f) && pkg.Fset.Position(f.Pos()).Filename == l.m.File {
			cands = append(cands, f)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Pos() < cands[j].Pos() })
	names := make([]string, len(cands))
	for i, f := range cands {
		names[i] = f.Name()
	}

	if fn := l.cfg.Func; fn != "" {
		obj := scope.Lookup(fn)
		f, ok := obj.(*types.Func)
		switch {
		case obj == nil:
			return "", fmt.Errorf("load model: package %s has no function %s; %s", pkg.Name, fn, declares(name, names))
		case !ok:
			return "", fmt.Errorf("%s: %s is a %s, not a model function; %s", l.relPos(pkg.Fset.Position(obj.Pos()).String()), fn, kindOf(obj), declares(name, names))
		case !f.Exported():
			return "", fmt.Errorf("%s: model function %s is not exported; rename it %s", l.relPos(pkg.Fset.Position(f.Pos()).String()), fn, strings.ToUpper(fn[:1])+fn[1:])
		case !isModelFunc(f):
			sig := types.TypeString(f.Type(), func(p *types.Package) string {
				if p == pkg.Types {
					return ""
				}
				return p.Name()
			})
			return "", fmt.Errorf("%s: %s is not a model function: want func %s() *ir.Graph, have %s", l.relPos(pkg.Fset.Position(f.Pos()).String()), fn, fn, sig)
		}
		return fn, nil
	}
	switch len(cands) {
	case 0:
		return "", fmt.Errorf("load model: %s declares no model function; a model is an exported func Name() *ir.Graph", name)
	case 1:
		return names[0], nil
	}
	return "", fmt.Errorf("load model: %s declares %d model functions (%s); choose one with -func", name, len(names), strings.Join(names, ", "))
}

// declares says which model functions file declares.
func declares(file string, names []string) string {
	switch len(names) {
	case 0:
		return file + " declares no model function"
	case 1:
		return fmt.Sprintf("%s declares model function %s", file, names[0])
	}
	return fmt.Sprintf("%s declares model functions %s", file, strings.Join(names, ", "))
}

func kindOf(obj types.Object) string {
	switch obj.(type) {
	case *types.Var:
		return "variable"
	case *types.Const:
		return "constant"
	case *types.TypeName:
		return "type"
	}
	return "name"
}

// isModelFunc reports whether f is func() *ir.Graph.
func isModelFunc(f *types.Func) bool {
	sig, ok := f.Type().(*types.Signature)
	if !ok || sig.Recv() != nil || sig.TypeParams().Len() != 0 || sig.Params().Len() != 0 || sig.Results().Len() != 1 {
		return false
	}
	ptr, ok := sig.Results().At(0).Type().(*types.Pointer)
	if !ok {
		return false
	}
	named, ok := types.Unalias(ptr.Elem()).(*types.Named)
	if !ok {
		return false
	}
	obj := named.Obj()
	return obj.Pkg() != nil && obj.Pkg().Path() == irPath && obj.Name() == "Graph"
}

// rel returns file relative to the base directory if that is shorter.
// A file named by import path (as -trimpath records it) is first mapped
// back to the model's package directory.
func (l *loader) rel(file string) string {
	if file == "" {
		return file
	}
	if !filepath.IsAbs(file) {
		if p := l.m.PkgPath; p != "" && strings.HasPrefix(file, p+"/") && !strings.Contains(file[len(p)+1:], "/") {
			file = filepath.Join(l.m.Dir, file[len(p)+1:])
		} else {
			return file
		}
	}
	if r, err := filepath.Rel(l.base, file); err == nil && len(r) < len(file) {
		return r
	}
	return file
}

// relErrors rewrites the positions of a validation error list.
func (l *loader) relErrors(err error) error {
	var list ir.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	out := make(ir.ErrorList, len(list))
	for i, e := range list {
		c := *e
		c.Pos.File = l.rel(c.Pos.File)
		out[i] = &c
	}
	return out
}

// testHookTempDir, if set, is told the name of every temporary directory
// the loader makes.
var testHookTempDir func(dir string)

// A panicInfo describes a panic in the model function, as the temporary
// program reports it.
type panicInfo struct {
	Value string `json:"value"`
	File  string `json:"file"`
	Line  int    `json:"line"`
	Stack string `json:"stack"`
}

// result is what the temporary program prints.
type result struct {
	Graph json.RawMessage `json:"graph"`
	Panic *panicInfo      `json:"panic"`
	Nil   bool            `json:"nil"`
}

// run writes the temporary program next to the model, runs it, and
// decodes the graph it prints.
func (l *loader) run(ctx context.Context) (*ir.Graph, error) {
	tmp, err := os.MkdirTemp(l.m.Dir, ".cnnc-load-")
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	defer os.RemoveAll(tmp)
	if testHookTempDir != nil {
		testHookTempDir(tmp)
	}
	main := filepath.Join(tmp, "main.go")
	if err := os.WriteFile(main, mainProgram(l.m.PkgPath, l.m.Dir, l.m.Func), 0o644); err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}

	args := append([]string{"run"}, l.cfg.BuildFlags...)
	args = append(args, main)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = l.m.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || runErr != nil {
		msg := strings.TrimSpace(stderr.String())
		if runErr == nil {
			runErr = fmt.Errorf("decode its output: %v", err)
		}
		return nil, fmt.Errorf("load model: run %s: %v\n%s", l.m.Func, runErr, msg)
	}
	if l.cfg.Stderr != nil {
		l.cfg.Stderr.Write(stderr.Bytes())
	}
	switch {
	case res.Panic != nil:
		p := res.Panic
		if p.Line > 0 {
			return nil, fmt.Errorf("%s:%d: %s panicked: %s", l.rel(p.File), p.Line, l.m.Func, p.Value)
		}
		return nil, fmt.Errorf("load model: %s panicked: %s\n%s", l.m.Func, p.Value, p.Stack)
	case res.Nil:
		return nil, fmt.Errorf("load model: %s returned a nil graph; return b.Graph()", l.m.Func)
	}
	g := new(ir.Graph)
	if err := json.Unmarshal(res.Graph, g); err != nil {
		return nil, fmt.Errorf("load model: decode the graph of %s (a bug in cnnc): %w", l.m.Func, err)
	}
	return g, nil
}

// mainProgram returns the source of the temporary program that calls the
// model function fn of package pkgPath (in directory dir) and prints a
// result as JSON on its standard output.
func mainProgram(pkgPath, dir, fn string) []byte {
	src := strings.NewReplacer(
		"PKGPATH", strconv.Quote(pkgPath),
		"PKGDIR", strconv.Quote(filepath.ToSlash(dir)),
		"FUNC", fn,
	).Replace(mainTemplate)
	return []byte(src)
}

const mainTemplate = `// Code generated by cnnc to load a model; it is removed after use. DO NOT EDIT.

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"runtime"

	model PKGPATH
)

// The model's package, as a directory and as an import path (the name
// -trimpath gives its files).
const (
	pkgDir  = PKGDIR
	pkgPath = PKGPATH
)

type panicInfo struct {
	Value string ` + "`json:\"value\"`" + `
	File  string ` + "`json:\"file\"`" + `
	Line  int    ` + "`json:\"line\"`" + `
	Stack string ` + "`json:\"stack\"`" + `
}

func main() {
	out := json.NewEncoder(os.Stdout)
	// What the model prints goes to stderr: stdout carries the result.
	os.Stdout = os.Stderr
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		p := panicInfo{Value: fmt.Sprint(r)}
		var pcs [100]uintptr
		n := runtime.Callers(1, pcs[:])
		frames := runtime.CallersFrames(pcs[:n])
		for {
			f, more := frames.Next()
			if d := path.Dir(f.File); p.Line == 0 && (d == pkgDir || d == pkgPath) {
				p.File, p.Line = f.File, f.Line
			}
			if !more {
				break
			}
		}
		buf := make([]byte, 64<<10)
		p.Stack = string(buf[:runtime.Stack(buf, false)])
		emit(out, map[string]any{"panic": p})
	}()
	g := model.FUNC()
	if g == nil {
		emit(out, map[string]any{"nil": true})
		return
	}
	emit(out, map[string]any{"graph": g})
}

func emit(out *json.Encoder, v any) {
	if err := out.Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
`
