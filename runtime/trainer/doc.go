// Package trainer implements the program that cnnc generates beside every
// compiled model: it trains the model on Fashion-MNIST (or any data set in
// MNIST's IDX format), evaluates it, prints progress and saves checkpoints.
// The logic lives here, in the runtime, so it is written and tested once and
// the generated cmd/train/main.go stays one line:
//
//	func main() { trainer.Main(lenet5.NewSeeded) }
//
// Main is generic over the model type, so a generated constructor
// func(seed uint64) *lenet5.Model can be passed as it is (a function type
// is not convertible to func(uint64) Model); -seed seeds the
// initialisation through it. The model's Info tells the trainer its
// compiled batch, its input shape ([C, H, W], or a flat feature count that
// must equal C*H*W) and its number of classes. Run does the work of Main with explicit
// arguments and output, for tests and for programs that embed the trainer.
//
// # The run
//
// The defaults reproduce the PyTorch accuracy anchor for LeNet-5
// (shared/anchors/accuracy_anchor.py): 5 epochs of mini-batches of 64,
// reshuffled every epoch with the last partial batch kept, SGD with learning
// rate 0.05 and momentum 0.9, the learning rate multiplied by 0.1 from the
// 4th epoch on, and inputs scaled to [0, 1] with the training set's mean
// subtracted. The anchor subtracts one scalar, the mean pixel; the trainer
// subtracts the mean image, pixel by pixel (-mean=false turns it off).
//
// Each epoch prints one line through runtime.Progress: the mean training
// loss, the accuracy on a fixed subset of the training set (its first 10000
// images, measured with Predict after the epoch), the test accuracy, the
// learning rate, the training throughput in images per second (training
// time only, evaluation excluded), the epoch's time and an estimate of the
// time left. A status line within the epoch is drawn only on a terminal. The
// run ends with a line giving the final test accuracy and throughput.
//
// # Flags
//
//	-data DIR       data set directory with the four IDX files (plain or .gz);
//	                default: /usr/share/datasets/fashion-mnist if present, else
//	                the subset embedded in runtime/data
//	-epochs N       epochs to train (5)
//	-batch N        mini-batch size, at most the model's compiled batch
//	                (64, or the compiled batch if that is smaller)
//	-lr X           learning rate of the first epoch (0.05)
//	-momentum X     SGD momentum (0.9)
//	-nesterov       Nesterov momentum
//	-wd X           L2 weight decay, applied by the optimiser (0)
//	-lr-steps LIST  comma-separated epochs, counted from 1, from which the
//	                learning rate is multiplied by -lr-gamma ("4"; "" for none)
//	-lr-gamma X     factor of each learning-rate step (0.1)
//	-seed N         seed of initialisation, shuffling and dropout (0)
//	-threads N      worker threads of the kernels; 0 keeps the runtime's
//	                default, CNNC_THREADS or all cores (0)
//	-mean           subtract the training set's mean image (true)
//	-save PATH      checkpoint written after every epoch (default
//	                "<model>.safetensors" in the current directory; "" for none)
//	-load PATH      start from a checkpoint
//	-eval-only      evaluate the -load checkpoint on the test set and exit
//	-metrics PATH   write one JSON object per epoch, one per line (not
//	                with -eval-only)
//	-limit N        use only the first N training and N test images (0: all)
//	-quiet          print only the final line
//
// The learning-rate steps count epochs from 1, as the anchor's comments do:
// with -epochs 5 -lr-steps 4, epochs 1 to 3 use -lr and epochs 4 and 5 use
// -lr times -lr-gamma, which is PyTorch's StepLR(step_size=3, gamma=0.1).
//
// # Checkpoints
//
// A checkpoint is a safetensors file holding the model's State (parameters
// and buffers, under the names PyTorch's state_dict uses) and the
// preprocessing the model was trained with: the mean image as the tensor
// "cnnc.preprocess.mean" of shape [C, H, W], and the metadata entry
// "cnnc.preprocess", "mean" or "none". -load and -eval-only apply the
// checkpoint's preprocessing whatever -mean says, so a model is evaluated on
// the inputs it was trained on. A checkpoint without that entry, such as one
// written by PyTorch, gets the preprocessing -mean asks for. Tensors named
// "cnnc.*" and PyTorch's "*.num_batches_tracked" are not model state; any
// other tensor the model lacks, a missing tensor or a shape that differs is
// an error that names the tensor. -load does not restore the optimiser's
// momentum or the epoch count: a loaded run starts a fresh schedule from the
// loaded weights.
//
// The metrics file has, for each epoch counted from 1, the keys epoch, loss,
// train_acc, test_acc (fractions in [0, 1]), lr, images_per_sec (training
// throughput), seconds (the epoch's wall time, evaluation included) and
// train_seconds.
package trainer
