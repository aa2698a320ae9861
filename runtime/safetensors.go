package runtime

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A Tensor is one tensor read from a safetensors file. DType is the type in
// the file. F32 holds the values of F32 and F64 tensors (F64 rounded to
// float32); I64 holds those of I64 tensors, such as PyTorch's batch-norm
// num_batches_tracked.
type Tensor struct {
	DType string
	Shape []int
	F32   []float32
	I64   []int64
}

// maxHeader bounds the JSON header, as the reference implementation does, so
// a corrupt length cannot make a reader allocate gigabytes.
const maxHeader = 100 << 20

// metadataKey is the header entry that holds free-form string metadata.
const metadataKey = "__metadata__"

// dtypeSize gives the element size of the dtypes LoadTensors reads.
var dtypeSize = map[string]int{"F32": 4, "F64": 8, "I64": 8}

// SaveTensors writes tensors, as F32, and metadata to a safetensors file at
// path. The layout is the reference implementation's: an 8-byte
// little-endian header length, a JSON header with __metadata__ first and the
// tensors sorted by name, padded with spaces to a multiple of 8 bytes, then
// the tensors' little-endian bytes in the same order. The file is written to
// a temporary file in the same directory, synced and renamed over path, so a
// crash leaves either the old file or the new one.
func SaveTensors(path string, tensors []*Param, metadata map[string]string) error {
	header, sorted, err := encodeHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := writeAtomic(path, func(w *bufio.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
		w.Write(n[:])
		w.Write(header)
		var buf [4]byte
		for _, t := range sorted {
			for _, v := range t.Logical(t.Data) {
				binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
				w.Write(buf[:])
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// encodeHeader returns the padded JSON header for tensors and the tensors in
// file order.
func encodeHeader(tensors []*Param, metadata map[string]string) ([]byte, []*Param, error) {
	sorted := slices.Clone(tensors)
	slices.SortStableFunc(sorted, func(a, b *Param) int { return strings.Compare(a.Name, b.Name) })
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		b.WriteString(`"__metadata__":{`)
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	var off int64
	for i, t := range sorted {
		switch {
		case t.Name == "":
			return nil, nil, errors.New("a tensor has no name")
		case t.Name == metadataKey:
			return nil, nil, fmt.Errorf("a tensor is named %s, which the format reserves for metadata", metadataKey)
		case i > 0 && sorted[i-1].Name == t.Name:
			return nil, nil, fmt.Errorf("two tensors are named %q; names must be unique", t.Name)
		}
		if size := shapeSize(t.Shape); size != len(t.Data) {
			return nil, nil, fmt.Errorf("tensor %q has shape %v (%d values) but %d values of data", t.Name, t.Shape, size, len(t.Data))
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		writeJSONString(&b, t.Name)
		b.WriteString(`:{"dtype":"F32","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprint(&b, d)
		}
		end := off + 4*int64(len(t.Data))
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), sorted, nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// writeAtomic writes a file at path through fill, by way of a temporary file
// in the same directory that is synced and renamed over path; it then syncs
// the directory, where the system allows, so the rename is durable.
func writeAtomic(path string, fill func(w *bufio.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<16)
	if err := fill(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: some systems cannot sync a directory
		d.Close()
	}
	return nil
}

// LoadTensors reads every tensor and the metadata of the safetensors file at
// path. It reads F32, F64 (rounded to float32) and I64 tensors, and reports
// a truncated or corrupt file, or one holding another dtype, as an error.
func LoadTensors(path string) (map[string]Tensor, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	tensors, meta, err := parseSafetensors(b)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	return tensors, meta, nil
}

type tensorInfo struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// parseSafetensors decodes a whole safetensors file held in b.
func parseSafetensors(b []byte) (map[string]Tensor, map[string]string, error) {
	const notST = " (is it a safetensors file?)"
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("truncated: the file is %d bytes, shorter than the 8-byte header length"+notST, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("header length %d is beyond the end of the %d-byte file; it is truncated or not a safetensors file", n, len(b))
	}
	if n > maxHeader {
		return nil, nil, fmt.Errorf("header length %d is over the %d-byte limit"+notST, n, maxHeader)
	}
	header, data := b[8:8+n], b[8+n:]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, nil, fmt.Errorf("bad JSON header: %v"+notST, err)
	}
	var meta map[string]string
	if m, ok := raw[metadataKey]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, nil, fmt.Errorf("bad %s: want an object of strings: %v", metadataKey, err)
		}
		delete(raw, metadataKey)
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names)
	type span struct {
		name       string
		begin, end int64
	}
	spans := make([]span, 0, len(names))
	tensors := make(map[string]Tensor, len(names))
	for _, name := range names {
		var info tensorInfo
		if err := json.Unmarshal(raw[name], &info); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: bad header entry: %v", name, err)
		}
		size, ok := dtypeSize[info.DType]
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q has dtype %q; cnnc reads only F32, F64 and I64 (convert it with torch.Tensor.float())", name, info.DType)
		}
		if len(info.Offsets) != 2 {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets has %d numbers, want 2", name, len(info.Offsets))
		}
		begin, end := info.Offsets[0], info.Offsets[1]
		if begin < 0 || end < begin || end > int64(len(data)) {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] are out of range for %d bytes of data; the file is truncated or corrupt", name, begin, end, len(data))
		}
		elems, shape, err := checkShape(info.Shape, math.MaxInt64/8)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		if want := elems * int64(size); want != end-begin {
			return nil, nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes but data_offsets [%d, %d] hold %d", name, shape, info.DType, want, begin, end, end-begin)
		}
		spans = append(spans, span{name, begin, end})
		tensors[name] = decodeTensor(info.DType, shape, data[begin:end])
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.begin != b.begin {
			return cmpInt64(a.begin, b.begin)
		}
		return cmpInt64(a.end, b.end)
	})
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		if b.begin < a.end && b.end > b.begin && a.end > a.begin {
			return nil, nil, fmt.Errorf("tensors %q [%d, %d] and %q [%d, %d] overlap; the file is corrupt", a.name, a.begin, a.end, b.name, b.begin, b.end)
		}
	}
	return tensors, meta, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkShape validates dims, whose product must not exceed limit, so that
// no product overflows, and returns the product and the shape as ints.
func checkShape(dims []int64, limit int64) (int64, []int, error) {
	shape := make([]int, len(dims))
	elems := int64(1)
	for i, d := range dims {
		if d < 0 {
			return 0, nil, fmt.Errorf("shape %v has a negative dimension", dims)
		}
		shape[i] = int(d)
		if d == 0 {
			elems = 0
			continue
		}
		if elems > limit/d {
			// Count on: a later zero dimension makes the product 0.
			elems = limit + 1
			continue
		}
		elems *= d
	}
	if elems > limit {
		return 0, nil, fmt.Errorf("shape %v has too many elements", dims)
	}
	return elems, shape, nil
}

func decodeTensor(dtype string, shape []int, b []byte) Tensor {
	t := Tensor{DType: dtype, Shape: shape}
	switch dtype {
	case "F32":
		t.F32 = make([]float32, len(b)/4)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "F64":
		t.F32 = make([]float32, len(b)/8)
		for i := range t.F32 {
			t.F32[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case "I64":
		t.I64 = make([]int64, len(b)/8)
		for i := range t.I64 {
			t.I64[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	}
	return t
}

// LoadInto reads the safetensors file at path into params. Every parameter
// must be in the file, as a floating-point tensor of the same shape. Tensors
// named "*.num_batches_tracked", which PyTorch's batch norm keeps and cnnc
// does not, and those named "cnnc.*", which hold the trainer's state (such
// as its preprocessing), are ignored; any other tensor the model lacks is
// an error. On
// error no parameter is changed.
func LoadInto(path string, params []*Param) error {
	tensors, _, err := LoadTensors(path)
	if err != nil {
		return err
	}
	const other = "; the checkpoint is probably for another model"
	var missing []string
	want := make(map[string]bool, len(params))
	for _, p := range params {
		want[p.Name] = true
		t, ok := tensors[p.Name]
		if !ok {
			missing = append(missing, p.Name)
			continue
		}
		if t.F32 == nil && t.I64 != nil {
			return fmt.Errorf("load %s: tensor %q has dtype %s, want a floating-point type (F32 or F64)", path, p.Name, t.DType)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("load %s: tensor %q has shape %v in the file but %v in the model%s", path, p.Name, t.Shape, p.Shape, other)
		}
		if len(p.Data) != len(t.F32) {
			return fmt.Errorf("load %s: parameter %q has %d values for shape %v, want %d", path, p.Name, len(p.Data), p.Shape, len(t.F32))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("load %s: the file lacks %s%s", path, quoteList(missing, "tensor"), other)
	}
	var extra []string
	for name := range tensors {
		if !want[name] && !strings.HasSuffix(name, ".num_batches_tracked") && !strings.HasPrefix(name, "cnnc.") {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fmt.Errorf("load %s: the file has %s that the model does not%s", path, quoteList(extra, "tensor"), other)
	}
	for _, p := range params {
		p.SetLogical(p.Data, tensors[p.Name].F32)
	}
	return nil
}

// quoteList returns "tensor "a"" or "tensors "a", "b" and "c"", listing at
// most 10 names.
func quoteList(names []string, noun string) string {
	q := make([]string, 0, len(names))
	for i, n := range names {
		if i == 10 {
			q = append(q, fmt.Sprintf("%d more", len(names)-10))
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	if len(q) == 1 {
		return noun + " " + q[0]
	}
	return noun + "s " + strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
