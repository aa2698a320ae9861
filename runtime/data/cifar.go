package data

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cnnc/cnnc/runtime"
)

// CIFAR-10's binary format: each record is one label byte followed by a
// 32x32 image as 1024 red, 1024 green and 1024 blue bytes, row by row.
const (
	cifarC, cifarH, cifarW = 3, 32, 32
	cifarPixels            = cifarC * cifarH * cifarW
	cifarRecord            = 1 + cifarPixels
	cifarClasses           = 10
	cifarSubdir            = "cifar-10-batches-bin"
)

// cifarTrainFiles and cifarTestFile are the files of the binary version of
// CIFAR-10 (cifar-10-binary.tar.gz).
var (
	cifarTrainFiles = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	cifarTestFile   = "test_batch.bin"
)

// CIFAR10ClassNames are the names of CIFAR-10's classes, in label order, as
// batches.meta.txt lists them.
var CIFAR10ClassNames = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// LoadCIFAR10 loads CIFAR-10's binary version from dir, or from its
// sub-folder cifar-10-batches-bin, the folder the archive
// cifar-10-binary.tar.gz unpacks to: the training set from data_batch_1.bin
// to data_batch_5.bin, in that order, and the test set from
// test_batch.bin. Each file is a sequence of 3073-byte records, a label
// in [0, 10) and a 3x32x32 image in CHW order, which becomes a Dataset of
// C=3, H=W=32 with pixels scaled from 0..255 to [0, 1]. Class names come
// from batches.meta.txt if it is there, else CIFAR10ClassNames.
//
// Each file is read whole into memory and converted on the worker pool,
// several files at a time; the data sets take 4 bytes per pixel, about 630
// MB for the 50000 training images and 126 MB for the 10000 test images, and
// the raw bytes of the files being converted, 30 MB each, are held only
// while they are converted.
func LoadCIFAR10(dir string) (train, test *Dataset, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("load cifar-10: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("load cifar-10: %s is not a directory; pass the directory that holds data_batch_1.bin", dir)
	}
	if !exists(filepath.Join(dir, cifarTrainFiles[0])) && exists(filepath.Join(dir, cifarSubdir, cifarTrainFiles[0])) {
		dir = filepath.Join(dir, cifarSubdir)
	}
	names := CIFAR10ClassNames
	if meta, err := readClassNames(filepath.Join(dir, "batches.meta.txt")); err != nil {
		return nil, nil, fmt.Errorf("load cifar-10: %w", err)
	} else if meta != nil {
		names = meta
	}
	paths := make([]string, 0, len(cifarTrainFiles)+1)
	for _, f := range append(cifarTrainFiles[:len(cifarTrainFiles):len(cifarTrainFiles)], cifarTestFile) {
		paths = append(paths, filepath.Join(dir, f))
	}
	sets, err := loadCIFARFiles(paths, []int{5, 1})
	if err != nil {
		return nil, nil, err
	}
	train, test = sets[0], sets[1]
	train.Name, test.Name = "cifar-10 train", "cifar-10 test"
	train.ClassNames, test.ClassNames = names, names
	return train, test, nil
}

// loadCIFARFiles reads the files at paths into data sets: the first
// groups[0] files into the first, the next groups[1] into the second, and so
// on. It checks every file's size before it reads any.
func loadCIFARFiles(paths []string, groups []int) ([]*Dataset, error) {
	records := make([]int, len(paths))
	for i, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load cifar-10: %s is missing; download the binary version (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it", p)
		}
		if err != nil {
			return nil, fmt.Errorf("load cifar-10: %w", err)
		}
		if fi.Size() == 0 || fi.Size()%cifarRecord != 0 {
			return nil, fmt.Errorf("load cifar-10: %s has %d bytes, not a positive multiple of the %d-byte record (1 label byte and 3x32x32 pixels); is it the binary version, not the Python or Matlab one?", p, fi.Size(), cifarRecord)
		}
		records[i] = int(fi.Size() / cifarRecord)
	}
	// Where each file's records start in its data set.
	sets := make([]*Dataset, len(groups))
	set := make([]int, len(paths))
	offset := make([]int, len(paths))
	f := 0
	for g, k := range groups {
		d := &Dataset{C: cifarC, H: cifarH, W: cifarW, Classes: cifarClasses}
		for range k {
			set[f], offset[f] = g, d.N
			d.N += records[f]
			f++
		}
		d.Images = make([]float32, d.N*cifarPixels)
		d.Labels = make([]int32, d.N)
		sets[g] = d
	}
	errs := make([]error, len(paths))
	runtime.DefaultPool().For(len(paths), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			errs[i] = readCIFARFile(paths[i], records[i], sets[set[i]], offset[i])
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sets, nil
}

// readCIFARFile reads the records of the file at path into d from record
// offset on.
func readCIFARFile(path string, records int, d *Dataset, offset int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load cifar-10: %w", err)
	}
	if len(b) != records*cifarRecord {
		return fmt.Errorf("load cifar-10: %s changed size while it was read", path)
	}
	for r := range records {
		rec := b[r*cifarRecord : (r+1)*cifarRecord]
		if rec[0] >= cifarClasses {
			return fmt.Errorf("load cifar-10: %s: record %d has label %d, want 0 to %d", path, r, rec[0], cifarClasses-1)
		}
		d.Labels[offset+r] = int32(rec[0])
		img := d.Images[(offset+r)*cifarPixels : (offset+r+1)*cifarPixels]
		for j, p := range rec[1:] {
			img[j] = float32(p) / 255
		}
	}
	return nil
}

// readClassNames reads one class name a line from path, skipping blank
// lines; it returns nil and no error if the file does not exist.
func readClassNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(names) != cifarClasses {
		return nil, fmt.Errorf("%s lists %d class names, want %d", path, len(names), cifarClasses)
	}
	return names, nil
}
