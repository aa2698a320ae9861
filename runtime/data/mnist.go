package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// The IDX files of MNIST and Fashion-MNIST, each optionally gzipped.
const (
	trainImages = "train-images-idx3-ubyte"
	trainLabels = "train-labels-idx1-ubyte"
	testImages  = "t10k-images-idx3-ubyte"
	testLabels  = "t10k-labels-idx1-ubyte"
)

// mnistClasses is the number of classes of MNIST and Fashion-MNIST.
const mnistClasses = 10

// LoadMNISTDir loads an MNIST-format data set, such as MNIST or
// Fashion-MNIST, from the four IDX files in dir, each of which may be gzipped
// and then end in ".gz". Pixels are scaled from 0..255 to [0, 1].
func LoadMNISTDir(dir string) (train, test *Dataset, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("load data set: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("load data set: %s is not a directory; pass the directory that holds %s(.gz) and the other IDX files", dir, trainImages)
	}
	return loadMNIST(os.DirFS(dir), func(name string) string { return filepath.Join(dir, name) }, "mnist")
}

// loadMNIST loads the four IDX files from fsys; where names a file of fsys
// in error messages.
func loadMNIST(fsys fs.FS, where func(string) string, name string) (train, test *Dataset, err error) {
	train, err = loadSplit(fsys, where, trainImages, trainLabels)
	if err != nil {
		return nil, nil, err
	}
	test, err = loadSplit(fsys, where, testImages, testLabels)
	if err != nil {
		return nil, nil, err
	}
	if test.H != train.H || test.W != train.W {
		return nil, nil, fmt.Errorf("load data set: test images are %dx%d but training images are %dx%d", test.H, test.W, train.H, train.W)
	}
	train.Name, test.Name = name+" train", name+" test"
	return train, test, nil
}

// findIDX returns the name of base or base.gz in fsys.
func findIDX(fsys fs.FS, where func(string) string, base string) (string, error) {
	for _, name := range []string{base, base + ".gz"} {
		if _, err := fs.Stat(fsys, name); err == nil {
			return name, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("load data set: %w", err)
		}
	}
	return "", fmt.Errorf("load data set: %s has no %s or %s.gz; download the IDX files or pass another directory", path.Dir(where(base)), base, base)
}

func loadSplit(fsys fs.FS, where func(string) string, imagesBase, labelsBase string) (*Dataset, error) {
	imagesName, err := findIDX(fsys, where, imagesBase)
	if err != nil {
		return nil, err
	}
	labelsName, err := findIDX(fsys, where, labelsBase)
	if err != nil {
		return nil, err
	}
	pixels, n, h, w, err := readImagesFS(fsys, imagesName, where)
	if err != nil {
		return nil, err
	}
	labels, err := readLabelsFS(fsys, labelsName, where)
	if err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, fmt.Errorf("load data set: %s has %d labels but %s has %d images; the files do not belong together", where(labelsName), len(labels), where(imagesName), n)
	}
	d := &Dataset{
		Images:  make([]float32, len(pixels)),
		Labels:  make([]int32, n),
		N:       n,
		C:       1,
		H:       h,
		W:       w,
		Classes: mnistClasses,
	}
	for i, p := range pixels {
		d.Images[i] = float32(p) / 255
	}
	for i, l := range labels {
		if l >= mnistClasses {
			return nil, fmt.Errorf("read %s: label %d at index %d is out of range [0, %d)", where(labelsName), l, i, mnistClasses)
		}
		d.Labels[i] = int32(l)
	}
	return d, nil
}

func readImagesFS(fsys fs.FS, name string, where func(string) string) ([]uint8, int, int, int, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("read images: %w", err)
	}
	defer f.Close()
	data, n, h, w, err := decodeIDXImages(f)
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("read %s: %w", where(name), err)
	}
	return data, n, h, w, nil
}

func readLabelsFS(fsys fs.FS, name string, where func(string) string) ([]uint8, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	defer f.Close()
	labels, err := decodeIDXLabels(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", where(name), err)
	}
	return labels, nil
}
