// Package data loads the data sets that cnnc's trainers learn from and
// serves them in shuffled mini-batches.
//
// It reads the IDX files of MNIST and Fashion-MNIST, plain or gzipped, finds
// Fashion-MNIST on the system (Debian's dataset-fashion-mnist package) or
// falls back to a class-balanced subset embedded in the package, so a
// trainer runs anywhere without a download. A Batcher fills the caller's
// buffers with shuffled batches, reproducibly from a seeded runtime.RNG,
// without allocating per batch.
//
// It also reads CIFAR-10's binary batches (LoadCIFAR10) and folders of PNG
// and JPEG images with one sub-folder per class (LoadImageFolder), splits a
// training set into training and validation parts (Dataset.Split), and
// computes the input normalisation a model trains with (Preprocess), which
// checkpoints carry as the tensors cnnc.preprocess.mean and
// cnnc.preprocess.std. Data sets live in memory as float32, 4 bytes a pixel.
//
// This package imports runtime and not the other way round, which is why
// Evaluate, which walks a Dataset, lives here rather than beside
// runtime.Accuracy.
package data

//go:generate go run ./internal/mksubset -src /usr/share/datasets/fashion-mnist -out fashionmnist
