package passes_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/passes"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// TestGoldenPasses compares the printed graph of LeNet-5 with batch-norm
// and dropout after every pass of both pipelines with
// testdata/golden/lenet5bn/<pipeline>/<NN>-<pass>.txt; go test ./passes
// -update rewrites them.
func TestGoldenPasses(t *testing.T) {
	g := lenet5.LeNet5BN()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	g.TrimPaths(root)
	g.TrimPaths("github.com/cnnc/cnnc") // built with -trimpath
	for _, p := range passes.Pipelines {
		t.Run(p.Name, func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", g.Name, p.Name)
			got := map[string]string{}
			_, err := p.Run(g, passes.Options{After: func(pass string, g *ir.Graph) error {
				got[fmt.Sprintf("%02d-%s.txt", len(got)+1, pass)] = g.String()
				return nil
			}})
			require.NoError(t, err)
			if *update {
				require.NoError(t, os.RemoveAll(dir))
				require.NoError(t, os.MkdirAll(dir, 0o755))
				for name, text := range got {
					require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
				}
				return
			}
			const fix = "if the change is intended, run go test ./passes -run TestGoldenPasses -update"
			files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
			require.NoError(t, err)
			var have, want []string
			for _, f := range files {
				have = append(have, filepath.Base(f))
			}
			for name := range got {
				want = append(want, name)
			}
			sort.Strings(want)
			require.Equal(t, want, have, "golden files in %s do not match the %s pipeline's passes; %s", dir, p.Name, fix)
			for _, name := range want {
				path := filepath.Join(dir, name)
				data, err := os.ReadFile(path)
				require.NoError(t, err)
				if string(data) != got[name] {
					t.Errorf("the graph after pass %s differs from %s; %s", name, path, fix)
				}
				// Parsing a golden file and printing it again reproduces it.
				parsed, err := ir.Parse(string(data))
				require.NoError(t, err, path)
				require.Equal(t, string(data), parsed.String(), "%s does not round-trip through ir.Parse", path)
			}
		})
	}
}
