package data

import (
	"embed"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// SystemFashionMNIST is where Debian's dataset-fashion-mnist package
// installs Fashion-MNIST.
const SystemFashionMNIST = "/usr/share/datasets/fashion-mnist"

// embedded holds a class-balanced subset of Fashion-MNIST: 600 training and
// 100 test images of each class; fashionmnist/LICENSE says how it was made.
//
//go:embed fashionmnist/*.gz
var embedded embed.FS

// embeddedSource describes the embedded subset to the user.
const embeddedSource = "embedded subset (6000 train / 1000 test images); install Debian's dataset-fashion-mnist or pass -data DIR for the full set"

// FashionMNIST loads Fashion-MNIST: from dir if dir is not empty (and it is
// an error if the files are not there), else from SystemFashionMNIST if the
// files are there, else from the subset embedded in this package. source
// says which, in words a trainer can print.
func FashionMNIST(dir string) (train, test *Dataset, source string, err error) {
	if dir != "" {
		train, test, err = LoadMNISTDir(dir)
		if err != nil {
			return nil, nil, "", err
		}
		train.Name, test.Name = "fashion-mnist train", "fashion-mnist test"
		return train, test, dir, nil
	}
	if hasIDXFiles(SystemFashionMNIST) {
		train, test, err = LoadMNISTDir(SystemFashionMNIST)
		if err != nil {
			return nil, nil, "", err
		}
		train.Name, test.Name = "fashion-mnist train", "fashion-mnist test"
		return train, test, SystemFashionMNIST, nil
	}
	train, test, err = FashionMNISTEmbedded()
	if err != nil {
		return nil, nil, "", err
	}
	return train, test, embeddedSource, nil
}

// FashionMNISTEmbedded loads the subset of Fashion-MNIST embedded in this
// package: the first 600 training and the first 100 test images of each
// class. It needs no files, which makes it the data set of tests.
func FashionMNISTEmbedded() (train, test *Dataset, err error) {
	sub, err := fs.Sub(embedded, "fashionmnist")
	if err != nil {
		return nil, nil, err
	}
	return loadMNIST(sub, func(name string) string { return path.Join("embedded fashionmnist", name) }, "fashion-mnist subset")
}

// hasIDXFiles reports whether dir holds all four IDX files, plain or
// gzipped.
func hasIDXFiles(dir string) bool {
	for _, base := range []string{trainImages, trainLabels, testImages, testLabels} {
		if !exists(filepath.Join(dir, base)) && !exists(filepath.Join(dir, base+".gz")) {
			return false
		}
	}
	return true
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
