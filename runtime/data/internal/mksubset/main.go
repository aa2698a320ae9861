// Command mksubset writes the Fashion-MNIST subset that package data embeds.
//
// It reads the full data set from -src and keeps, in the original order,
// the first -train images of each class from the training set and the first
// -test images of each class from the test set, and writes them as gzipped
// IDX files to -out. The output is deterministic: the same input gives the
// same bytes. Run it with go generate in runtime/data:
//
//	go run ./internal/mksubset -src /usr/share/datasets/fashion-mnist -out fashionmnist
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cnnc/cnnc/runtime/data"
)

// maxTotal bounds the embedded files, which every trainer binary carries.
const maxTotal = 5 << 20

func main() {
	src := flag.String("src", "/usr/share/datasets/fashion-mnist", "directory of the full Fashion-MNIST IDX files")
	out := flag.String("out", "fashionmnist", "directory to write the subset to")
	trainPer := flag.Int("train", 600, "training images per class")
	testPer := flag.Int("test", 100, "test images per class")
	flag.Parse()
	if err := run(*src, *out, *trainPer, *testPer); err != nil {
		fmt.Fprintf(os.Stderr, "mksubset: %v\n", err)
		os.Exit(1)
	}
}

func run(src, out string, trainPer, testPer int) error {
	total := 0
	for _, split := range []struct {
		prefix string
		per    int
	}{{"train", trainPer}, {"t10k", testPer}} {
		images, n, h, w, err := data.ReadIDXImages(filepath.Join(src, split.prefix+"-images-idx3-ubyte.gz"))
		if err != nil {
			return err
		}
		labels, err := data.ReadIDXLabels(filepath.Join(src, split.prefix+"-labels-idx1-ubyte.gz"))
		if err != nil {
			return err
		}
		if len(labels) != n {
			return fmt.Errorf("%s: %d labels for %d images", split.prefix, len(labels), n)
		}
		var keptImages, keptLabels []byte
		count := map[uint8]int{}
		for i, l := range labels {
			if count[l] < split.per {
				count[l]++
				keptImages = append(keptImages, images[i*h*w:(i+1)*h*w]...)
				keptLabels = append(keptLabels, l)
			}
		}
		for l := range uint8(10) {
			if count[l] != split.per {
				return fmt.Errorf("%s: class %d has only %d images, want %d", split.prefix, l, count[l], split.per)
			}
		}
		m := len(keptLabels)
		sizeI, err := writeIDX(filepath.Join(out, split.prefix+"-images-idx3-ubyte.gz"), 0x803, []int{m, h, w}, keptImages)
		if err != nil {
			return err
		}
		sizeL, err := writeIDX(filepath.Join(out, split.prefix+"-labels-idx1-ubyte.gz"), 0x801, []int{m}, keptLabels)
		if err != nil {
			return err
		}
		total += sizeI + sizeL
		fmt.Printf("%s: %d images, %d + %d bytes gzipped\n", split.prefix, m, sizeI, sizeL)
	}
	if total > maxTotal {
		return fmt.Errorf("subset is %d bytes, over the %d-byte budget; lower -train or -test", total, maxTotal)
	}
	return nil
}

// writeIDX writes a gzipped IDX file of unsigned bytes with the given dims
// and returns its size. The gzip header carries no name or time, so the
// output depends only on the data.
func writeIDX(path string, magic uint32, dims []int, body []byte) (int, error) {
	var raw bytes.Buffer
	binary.Write(&raw, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&raw, binary.BigEndian, uint32(d))
	}
	raw.Write(body)
	var z bytes.Buffer
	zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression)
	if err != nil {
		return 0, err
	}
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		return 0, err
	}
	if err := os.WriteFile(path, z.Bytes(), 0o644); err != nil {
		return 0, err
	}
	return z.Len(), nil
}
