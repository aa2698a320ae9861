package load

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// root is the module root, from this package's directory.
const root = "../.."

// TestMain checks that the loader removed every temporary directory it
// made.
func TestMain(m *testing.M) {
	var mu sync.Mutex
	var dirs []string
	testHookTempDir = func(dir string) {
		mu.Lock()
		dirs = append(dirs, dir)
		mu.Unlock()
	}
	code := m.Run()
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			fmt.Fprintf(os.Stderr, "FAIL: the loader left %s behind\n", d)
			code = 1
		}
	}
	if len(dirs) == 0 {
		fmt.Fprintln(os.Stderr, "FAIL: testHookTempDir was never called")
		code = 1
	}
	os.Exit(code)
}

// TestBadModels loads every case of testdata/badmodels and compares the
// error with the case's want.txt, which holds what `cnnc compile` prints.
// A graph that loads is checked for training, as cnnc compile does.
func TestBadModels(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(root, "testdata", "badmodels", "*", "model.go"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, file := range dirs {
		dir, err := filepath.Abs(filepath.Dir(file))
		require.NoError(t, err)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			want, err := os.ReadFile(filepath.Join(dir, "want.txt"))
			require.NoError(t, err)
			cfg := Config{Dir: dir}
			cfg.Func, cfg.BuildFlags = caseArgs(t, dir)
			m, err := cfg.Load(context.Background(), filepath.Join(dir, "model.go"))
			if err == nil {
				err = m.Graph.ValidateTraining()
			}
			require.Error(t, err)
			assert.Equal(t, string(want), "cnnc: "+err.Error()+"\n")
		})
	}
}

// caseArgs reads the -func and -tags flags of a case's args.txt.
func caseArgs(t *testing.T, dir string) (fn string, buildFlags []string) {
	data, err := os.ReadFile(filepath.Join(dir, "args.txt"))
	if os.IsNotExist(err) {
		return "", nil
	}
	require.NoError(t, err)
	fs := flag.NewFlagSet("args.txt", flag.ContinueOnError)
	tags := fs.String("tags", "", "")
	fs.StringVar(&fn, "func", "", "")
	require.NoError(t, fs.Parse(strings.Fields(string(data))))
	if *tags != "" {
		buildFlags = []string{"-tags=" + *tags}
	}
	return fn, buildFlags
}

func TestLoad(t *testing.T) {
	lenet := filepath.Join(root, "models", "lenet5", "model.go")
	linear := filepath.Join(root, "models", "linear", "model.go")
	tests := []struct {
		file, fn   string
		wantName   string // graph name
		wantNodes  int    // at least
		wantSource string
		wantErr    string
	}{
		{file: lenet, fn: "LeNet5", wantName: "lenet5", wantNodes: 20, wantSource: "models/lenet5/model.go"},
		{file: lenet, fn: "LeNet5BN", wantName: "lenet5bn", wantNodes: 20, wantSource: "models/lenet5/model.go"},
		{file: linear, fn: "SVM", wantName: "svm", wantNodes: 5, wantSource: "models/linear/model.go"},
		{file: lenet, wantErr: "load model: model.go declares 2 model functions (LeNet5, LeNet5BN); choose one with -func"},
		{file: lenet, fn: "LeNet", wantErr: "load model: package lenet5 has no function LeNet; model.go declares model functions LeNet5, LeNet5BN"},
		{file: filepath.Join(root, "models", "lenet5", "nope.go"), wantErr: "load model: stat "},
		{file: filepath.Join(root, "models", "lenet5"), wantErr: "is a directory; name the model's .go file"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(filepath.Dir(tt.file))+"/"+tt.fn, func(t *testing.T) {
			t.Parallel()
			dir, err := filepath.Abs(filepath.Dir(tt.file))
			require.NoError(t, err)
			m, err := Config{Func: tt.fn, Dir: dir}.Load(context.Background(), tt.file)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantName, m.Graph.Name)
			assert.Equal(t, tt.fn, m.Func)
			assert.Equal(t, tt.wantSource, m.SourceName)
			assert.Equal(t, "github.com/cnnc/cnnc", m.Module)
			assert.GreaterOrEqual(t, len(m.Graph.Nodes), tt.wantNodes)
			// Positions are relative to Config.Dir, the model's directory.
			for _, n := range m.Graph.Nodes {
				if n.Pos.IsValid() {
					assert.Equal(t, "model.go", n.Pos.File, "position of %v", n)
				}
			}
		})
	}
}

// TestLoadFunc checks the package-level Load, from the current directory.
func TestLoadFunc(t *testing.T) {
	g, err := Load(context.Background(), filepath.Join(root, "models", "linear", "model.go"), "Softmax", nil)
	require.NoError(t, err)
	assert.Equal(t, "softmax", g.Name)
	require.NotEmpty(t, g.Nodes)
	assert.Equal(t, filepath.Join(root, "models", "linear", "model.go"), g.Nodes[0].Pos.File)
}

func TestRelPos(t *testing.T) {
	l := &loader{base: "/home/u/proj", m: &Model{PkgPath: "example.com/proj/model", Dir: "/home/u/proj/model"}}
	tests := []struct{ in, want string }{
		{"", ""},
		{"-", ""},
		{"/home/u/proj/model/model.go:12:5", "model/model.go:12:5"},
		{"/home/u/proj/model/model.go:12", "model/model.go:12"},
		{"/home/u/proj/model/model.go", "model/model.go"},
		{"/elsewhere/x.go:1:2", "/elsewhere/x.go:1:2"},
		{"example.com/proj/model/model.go:3:1", "model/model.go:3:1"},
		{"./model.go:3:1", "./model.go:3:1"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, l.relPos(tt.in), "relPos(%q)", tt.in)
	}
}

// TestBuildFlags loads a model that only builds with a tag, with and
// without the tag, and checks that what the model
// prints reaches Config.Stderr, not the graph.
func TestBuildFlags(t *testing.T) {
	absRoot, err := filepath.Abs(root)
	require.NoError(t, err)
	dir, err := os.MkdirTemp(absRoot, "_cnnc-test-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := `//go:build cnnctag

package tagged

import (
	"fmt"

	"github.com/cnnc/cnnc/ir"
)

func Net() *ir.Graph {
	fmt.Println("hello from the model")
	b := ir.NewBuilder("tagged", 4)
	x := b.Input("x", 3)
	y := b.Labels("y", 2)
	logits := b.Linear("fc", x, 3, 2)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
`
	file := filepath.Join(dir, "model.go")
	require.NoError(t, os.WriteFile(file, []byte(src), 0o644))

	_, err = Config{Dir: dir}.Load(context.Background(), file)
	require.Error(t, err)
	assert.Equal(t, "load model: model.go is excluded by build constraints; pass the build tags it needs with -tags", err.Error())

	for _, flags := range [][]string{{"-tags=cnnctag"}, {"-tags", "cnnctag"}} {
		var stderr strings.Builder
		m, err := Config{Dir: dir, BuildFlags: flags, Stderr: &stderr}.Load(context.Background(), file)
		require.NoError(t, err, "%q", flags)
		assert.Equal(t, "Net", m.Func)
		assert.Equal(t, "hello from the model\n", stderr.String())
		require.NotEmpty(t, m.Graph.Nodes)
		assert.Equal(t, "model.go", m.Graph.Nodes[0].Pos.File, "%q", flags)
	}
}
