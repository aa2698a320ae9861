package runtime

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stFile assembles a safetensors file from a header, padded to 8 bytes with
// spaces, and data.
func stFile(header string, data ...byte) []byte {
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func f32le(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func f64le(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func i64le(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

func TestSaveTensorsGolden(t *testing.T) {
	a := NewParam("a", []int{1, 1}, true)
	a.Data[0] = 0.5
	b := NewParam("b", []int{2}, false)
	copy(b.Data, []float32{1, -2})
	path := filepath.Join(t.TempDir(), "tiny.safetensors")
	// Tensors given out of order come out sorted by name.
	require.NoError(t, SaveTensors(path, []*Param{b, a}, map[string]string{"format": "pt"}))
	got, err := os.ReadFile(path)
	require.NoError(t, err)

	// The header is 141 bytes of JSON padded with 3 spaces to 144 (0x90);
	// the data is 0.5, then 1 and -2, as little-endian float32.
	want := []byte{0x90, 0, 0, 0, 0, 0, 0, 0}
	want = append(want, `{"__metadata__":{"format":"pt"},`+
		`"a":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},`+
		`"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}   `...)
	want = append(want,
		0x00, 0x00, 0x00, 0x3f,
		0x00, 0x00, 0x80, 0x3f,
		0x00, 0x00, 0x00, 0xc0)
	assert.Equal(t, string(want), string(got))

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "SaveTensors left a temporary file behind")
}

func TestSaveTensorsNoMetadata(t *testing.T) {
	p := NewParam("w", []int{0}, false)
	path := filepath.Join(t.TempDir(), "empty.safetensors")
	require.NoError(t, SaveTensors(path, []*Param{p}, nil))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(stFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`)), string(got))
}

func TestSafetensorsRoundTrip(t *testing.T) {
	r := NewRNG(1)
	var params []*Param
	for _, spec := range []struct {
		name  string
		shape []int
	}{
		{"conv1.weight", []int{6, 1, 5, 5}},
		{"conv1.bias", []int{6}},
		{"bn1.running_var", []int{6}},
		{"fc3.weight", []int{10, 84}},
		{"scalar", []int{}},
		{"weird \"name\" ü", []int{2, 3}},
	} {
		p := NewParam(spec.name, spec.shape, true)
		for i := range p.Data {
			p.Data[i] = float32(r.NormFloat64())
		}
		params = append(params, p)
	}
	params[0].Data[0] = float32(math.Inf(-1))
	params[0].Data[1] = float32(math.NaN())
	path := filepath.Join(t.TempDir(), "m.safetensors")
	meta := map[string]string{"format": "pt", "epoch": "3", "note": "a \"quoted\"\nline"}
	require.NoError(t, SaveTensors(path, params, meta))
	// Saving over an existing file replaces it.
	require.NoError(t, SaveTensors(path, params, meta))

	tensors, gotMeta, err := LoadTensors(path)
	require.NoError(t, err)
	assert.Equal(t, meta, gotMeta)
	require.Len(t, tensors, len(params))
	for _, p := range params {
		tt, ok := tensors[p.Name]
		require.True(t, ok, "tensor %q missing", p.Name)
		assert.Equal(t, "F32", tt.DType)
		assert.Equal(t, p.Shape, tt.Shape, p.Name)
		require.Len(t, tt.F32, len(p.Data))
		for i := range p.Data {
			require.Equal(t, math.Float32bits(p.Data[i]), math.Float32bits(tt.F32[i]), "%s[%d]", p.Name, i)
		}
	}

	// LoadInto restores the values into fresh parameters.
	fresh := make([]*Param, len(params))
	for i, p := range params {
		fresh[i] = NewParam(p.Name, p.Shape, true)
	}
	require.NoError(t, LoadInto(path, fresh))
	for i := range params {
		for j := range params[i].Data {
			require.Equal(t, math.Float32bits(params[i].Data[j]), math.Float32bits(fresh[i].Data[j]))
		}
	}
}

func TestSaveTensorsErrors(t *testing.T) {
	dir := t.TempDir()
	bad := &Param{Name: "w", Shape: []int{2, 2}, Data: make([]float32, 3)}
	tests := []struct {
		name    string
		path    string
		tensors []*Param
		err     string
	}{
		{"data size", filepath.Join(dir, "a.safetensors"), []*Param{bad}, `save ` + filepath.Join(dir, "a.safetensors") + `: tensor "w" has shape [2 2] (4 values) but 3 values of data`},
		{"duplicate", filepath.Join(dir, "b.safetensors"), []*Param{NewParam("w", nil, false), NewParam("w", nil, false)}, `two tensors are named "w"`},
		{"reserved", filepath.Join(dir, "c.safetensors"), []*Param{NewParam("__metadata__", nil, false)}, "reserves for metadata"},
		{"unnamed", filepath.Join(dir, "d.safetensors"), []*Param{NewParam("", nil, false)}, "a tensor has no name"},
		{"no directory", filepath.Join(dir, "missing", "e.safetensors"), []*Param{NewParam("w", nil, false)}, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SaveTensors(tt.path, tt.tensors, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
			_, statErr := os.Stat(tt.path)
			assert.True(t, os.IsNotExist(statErr), "a failed save left %s", tt.path)
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "failed saves left files behind")
}

func TestLoadTensorsDTypes(t *testing.T) {
	b := stFile(`{"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},`+
		`"bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[16,24]}}`,
		append(f64le(1.5, -1e-3), i64le(938)...)...)
	tensors, meta, err := LoadTensors(writeFile(t, b))
	require.NoError(t, err)
	assert.Nil(t, meta)
	assert.Equal(t, Tensor{DType: "F64", Shape: []int{2}, F32: []float32{1.5, -1e-3}}, tensors["x"])
	assert.Equal(t, Tensor{DType: "I64", Shape: []int{}, I64: []int64{938}}, tensors["bn.num_batches_tracked"])
}

func TestLoadTensorsCorrupt(t *testing.T) {
	valid := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	tests := []struct {
		name string
		file []byte
		err  string
	}{
		{"empty", nil, "truncated: the file is 0 bytes, shorter than the 8-byte header length (is it a safetensors file?)"},
		{"short", []byte{1, 2, 3, 4, 5}, "truncated: the file is 5 bytes"},
		{"header beyond end", stFile(valid)[:40], "header length 56 is beyond the end of the 40-byte file; it is truncated or not a safetensors file"},
		{"huge header length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'}, "header length 18446744073709551615 is beyond the end of the 10-byte file"},
		{"bad json", stFile(`{"a":`), "bad JSON header"},
		{"not an object", stFile(`[1,2]`), "bad JSON header"},
		{"bad metadata", stFile(`{"__metadata__":{"n":1}}`), "bad __metadata__: want an object of strings"},
		{"bad entry", stFile(`{"a":[1]}`), `tensor "a": bad header entry`},
		{"dtype", stFile(`{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`, 0, 0, 0, 0), `tensor "a" has dtype "BF16"; cnnc reads only F32, F64 and I64`},
		{"offsets count", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 0, 0, 0, 0), `tensor "a": data_offsets has 1 numbers, want 2`},
		{"offsets beyond data", stFile(valid, f32le(1)...), `tensor "a": data_offsets [0, 8] are out of range for 4 bytes of data; the file is truncated or corrupt`},
		{"offsets reversed", stFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, f32le(1)...), `data_offsets [4, 0] are out of range`},
		{"negative offset", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, f32le(1)...), `data_offsets [-4, 0] are out of range`},
		{"size mismatch", stFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32le(1, 2)...), `tensor "a": shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8`},
		{"negative dim", stFile(`{"a":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}}`, f32le(1, 2)...), `tensor "a": shape [-1 2] has a negative dimension`},
		{"overflowing shape", stFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}`, f32le(1, 2)...), `shape [4294967296 4294967296 4] has too many elements`},
		{"fractional dim", stFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, f32le(1, 2)...), `tensor "a": bad header entry`},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32le(1, 2, 3)...), `tensors "a" [0, 8] and "b" [4, 12] overlap; the file is corrupt`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			_, _, err := LoadTensors(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
			assert.True(t, strings.HasPrefix(err.Error(), "load "+path+": "), "error %q does not name the file", err)
		})
	}
	_, _, err := LoadTensors(filepath.Join(t.TempDir(), "none.safetensors"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no such file")
}

// validFile returns a small but complete safetensors file for the
// corruption tests.
func validFile(t testing.TB) []byte {
	path := filepath.Join(t.TempDir(), "v.safetensors")
	a := NewParam("conv.weight", []int{2, 1, 2, 2}, false)
	b := NewParam("conv.bias", []int{2}, false)
	for i := range a.Data {
		a.Data[i] = float32(i)
	}
	if err := SaveTensors(path, []*Param{a, b}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseSafetensorsCorruptionNeverPanics(t *testing.T) {
	valid := validFile(t)
	r := NewRNG(99)
	for i := range 5000 {
		b := append([]byte(nil), valid...)
		switch i % 3 {
		case 0: // truncate
			b = b[:r.Intn(len(b))]
		case 1: // flip bits
			for range 1 + r.Intn(4) {
				b[r.Intn(len(b))] ^= 1 << r.Intn(8)
			}
		case 2: // overwrite a byte of the header with a random one
			b[8+r.Intn(len(b)-8)] = byte(r.Intn(256))
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("parseSafetensors panicked on case %d: %v\nfile: %q", i, p, b)
				}
			}()
			parseSafetensors(b)
		}()
	}
}

func FuzzParseSafetensors(f *testing.F) {
	f.Add(validFile(f))
	f.Add(stFile(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, i64le(3)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		tensors, _, err := parseSafetensors(b)
		if err != nil {
			return
		}
		for name, tt := range tensors {
			if n := shapeSize(tt.Shape); n != len(tt.F32)+len(tt.I64) {
				t.Fatalf("tensor %q: shape %v but %d values", name, tt.Shape, len(tt.F32)+len(tt.I64))
			}
		}
	})
}

func TestLoadInto(t *testing.T) {
	w := f32le(1, 2, 3, 4)
	file := func(extra string, data ...byte) string {
		return writeFile(t, stFile(`{"bn.running_mean":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},`+
			`"fc.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`+extra+`}`, append(append(w, f32le(9)...), data...)...))
	}
	model := func() []*Param {
		return []*Param{NewParam("fc.weight", []int{2, 2}, true), NewParam("bn.running_mean", []int{1}, false)}
	}
	other := "; the checkpoint is probably for another model"
	tests := []struct {
		name   string
		path   string
		params []*Param
		err    string // empty: success
	}{
		{"exact", file(""), model(), ""},
		{"num_batches_tracked ignored", file(`,"bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[20,28]}`, i64le(5)...), model(), ""},
		{"trainer state ignored", file(`,"cnnc.preprocess.mean":{"dtype":"F32","shape":[1],"data_offsets":[20,24]}`, f32le(0.5)...), model(), ""},
		{"extra tensors", file(`,"fc2.bias":{"dtype":"F32","shape":[1],"data_offsets":[20,24]},"z":{"dtype":"F32","shape":[0],"data_offsets":[24,24]}`, f32le(0)...), model(),
			`the file has tensors "fc2.bias" and "z" that the model does not` + other},
		{"missing", file(""), append(model(), NewParam("fc.bias", []int{2}, true)), `the file lacks tensor "fc.bias"` + other},
		{"shape", file(""), []*Param{NewParam("fc.weight", []int{4}, true), NewParam("bn.running_mean", []int{1}, false)},
			`tensor "fc.weight" has shape [2 2] in the file but [4] in the model` + other},
		{"integer tensor", writeFile(t, stFile(`{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, i64le(1)...)), []*Param{NewParam("w", []int{1}, true)},
			`tensor "w" has dtype I64, want a floating-point type (F32 or F64)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range tt.params {
				for i := range p.Data {
					p.Data[i] = -7
				}
			}
			err := LoadInto(tt.path, tt.params)
			if tt.err == "" {
				require.NoError(t, err)
				assert.Equal(t, []float32{1, 2, 3, 4}, tt.params[0].Data)
				assert.Equal(t, []float32{9}, tt.params[1].Data)
				return
			}
			require.Error(t, err)
			assert.Equal(t, "load "+tt.path+": "+tt.err, err.Error())
			for _, p := range tt.params {
				for _, v := range p.Data {
					require.Equal(t, float32(-7), v, "a failed load changed %s", p.Name)
				}
			}
		})
	}
}

// TestPanelsInFiles checks that a weight stored as column panels goes to
// a file in row-major order, as PyTorch has it, and comes back into either
// layout.
func TestPanelsInFiles(t *testing.T) {
	const rows, cols = 3, 20
	logical := make([]float32, rows*cols)
	for i := range logical {
		logical[i] = float32(i) / 4
	}
	w := NewParam("fc.weight", []int{rows, cols}, false)
	copy(w.Data, logical)
	w.UsePanels()
	path := filepath.Join(t.TempDir(), "w.safetensors")
	require.NoError(t, SaveTensors(path, []*Param{w}, nil))
	tensors, _, err := LoadTensors(path)
	require.NoError(t, err)
	assert.Equal(t, logical, tensors["fc.weight"].F32, "the file holds the row-major matrix")

	rowMajor := NewParam("fc.weight", []int{rows, cols}, false)
	require.NoError(t, LoadInto(path, []*Param{rowMajor}))
	assert.Equal(t, logical, rowMajor.Data)
	panels := NewParam("fc.weight", []int{rows, cols}, false)
	panels.UsePanels()
	require.NoError(t, LoadInto(path, []*Param{panels}))
	assert.Equal(t, w.Data, panels.Data)
}
