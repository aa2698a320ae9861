package trainer

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/cnnc/cnnc/runtime/data"
)

// dataSpec says which data set to load: -dataset, -data and, for image
// folders, the model's input shape (C, H, W; 0 when the model takes flat
// inputs).
type dataSpec struct {
	kind    string // fashion, mnist, cifar10 or folder
	dir     string
	c, h, w int
}

// folderTestFrac is the part of an image folder without train/ and test/
// sub-folders that is held out as the test set, class by class.
const folderTestFrac = 0.2

// splitSeed seeds the held-out splits of -val and of image folders. It is
// fixed, not -seed, so that runs with different seeds are compared on the
// same images.
const splitSeed = 0x73706c6974 // "split"

// loadData loads the training and test sets d names and says where they
// came from.
func loadData(d dataSpec) (train, test *data.Dataset, source string, err error) {
	need := func() error {
		if d.dir == "" {
			return fmt.Errorf("-dataset %s needs -data DIR, the directory that holds it", d.kind)
		}
		return nil
	}
	switch d.kind {
	case "fashion":
		return data.FashionMNIST(d.dir)
	case "mnist":
		if err := need(); err != nil {
			return nil, nil, "", err
		}
		train, test, err = data.LoadMNISTDir(d.dir)
		return train, test, d.dir, err
	case "cifar10":
		if err := need(); err != nil {
			return nil, nil, "", err
		}
		train, test, err = data.LoadCIFAR10(d.dir)
		if err == nil {
			train.Name, test.Name = "cifar-10 train", "cifar-10 test"
		}
		return train, test, d.dir, err
	case "folder":
		if err := need(); err != nil {
			return nil, nil, "", err
		}
		return loadFolder(d)
	}
	return nil, nil, "", fmt.Errorf("-dataset %q: want one of fashion, mnist, cifar10, folder", d.kind)
}

// loadFolder loads an image folder resized to the model's input: from its
// train/ and test/ (or val/) sub-folders when it has them, else the whole
// folder with folderTestFrac of each class held out for testing.
func loadFolder(d dataSpec) (train, test *data.Dataset, source string, err error) {
	if d.c == 0 {
		return nil, nil, "", fmt.Errorf("-dataset folder: the model takes flat inputs, so the images' size is unknown; declare its input as channels, height and width")
	}
	isDir := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.IsDir()
	}
	trainDir := filepath.Join(d.dir, "train")
	testDir := ""
	for _, name := range []string{"test", "val"} {
		if p := filepath.Join(d.dir, name); isDir(p) {
			testDir = p
			break
		}
	}
	if isDir(trainDir) && testDir != "" {
		if train, err = data.LoadImageFolder(trainDir, d.c, d.h, d.w); err != nil {
			return nil, nil, "", err
		}
		if test, err = data.LoadImageFolder(testDir, d.c, d.h, d.w); err != nil {
			return nil, nil, "", err
		}
		if !slices.Equal(train.ClassNames, test.ClassNames) {
			return nil, nil, "", fmt.Errorf("load image folder %s: the class folders of %s (%v) and %s (%v) differ; both need the same classes", d.dir, trainDir, train.ClassNames, testDir, test.ClassNames)
		}
		train.Name, test.Name = trainDir, testDir
		return train, test, d.dir, nil
	}
	all, err := data.LoadImageFolder(d.dir, d.c, d.h, d.w)
	if err != nil {
		return nil, nil, "", err
	}
	train, test = all.Split(folderTestFrac, splitSeed)
	return train, test, fmt.Sprintf("%s (%.0f%% of each class held out for testing; give it train/ and test/ sub-folders to choose)", d.dir, 100*folderTestFrac), nil
}
