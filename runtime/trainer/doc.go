// Package trainer implements the program that cnnc generates beside every
// compiled model: it trains the model on Fashion-MNIST (or MNIST, CIFAR-10
// or a folder of images), evaluates it, prints progress and saves
// checkpoints from which a run can resume.
// The logic lives here, in the runtime, so it is written and tested once and
// the generated cmd/train/main.go stays one line:
//
//	func main() { trainer.Main(lenet5.NewSeeded, trainer.WithCUDA(lenet5.NewCUDASeeded)) }
//
// Main is generic over the model type, so a generated constructor
// func(seed uint64) *lenet5.Model can be passed as it is (a function type
// is not convertible to func(uint64) Model); -seed seeds the
// initialisation through it. The model's Info tells the trainer its
// compiled batch, its input shape ([C, H, W], or a flat feature count that
// must equal C*H*W) and its number of classes. Run does the work of Main
// with explicit arguments and output, for tests and for programs that embed
// the trainer.
//
// # The run
//
// The defaults reproduce the PyTorch accuracy anchor for LeNet-5
// (shared/anchors/accuracy_anchor.py): 5 epochs of mini-batches of 64,
// reshuffled every epoch with the last partial batch kept, SGD with learning
// rate 0.05 and momentum 0.9, the learning rate multiplied by 0.1 from the
// 4th epoch on, and inputs scaled to [0, 1] with the training set's mean
// subtracted. The anchor subtracts one scalar, the mean pixel; the trainer
// subtracts the mean image, pixel by pixel (-preprocess none turns it off).
//
// Each epoch prints one line through runtime.Progress: the mean training
// loss, the accuracy on a fixed subset of the training set (its first 10000
// images, measured with Predict after the epoch), the validation accuracy
// with -val, the test accuracy, the learning rate at the epoch's first
// step, the training throughput in images per second (training time only,
// evaluation excluded), the epoch's time and an estimate of the time left.
// On a terminal a status line with a progress bar is redrawn within the
// epoch; elsewhere (a file, a pipe) there are only the epoch lines. The run
// ends with a line giving the final test accuracy and throughput.
//
// Each training batch goes through, in order: the shuffled batcher (seeded
// by -seed), -augment on runtime.DefaultPool (seeded by -seed and the
// number of batches trained so far, so the same on any number of threads),
// the input normalisation of -preprocess, the model's TrainStep, the
// gradients of -l1 and -elastic, and an SGD step at the learning rate the
// schedule gives at that step. With a model that has a gradient hook
// (SetGradHook: every generated one) the last two run inside TrainStep,
// for each parameter as soon as the backward pass has its gradient, with
// the same results; a linear layer's weight takes them by rows, as the
// workers compute its gradient (SetRangeHook). Data sets stay in memory
// as loaded, in [0, 1]; evaluation normalises each batch the same way,
// without augmentation.
//
// # Flags
//
//	-dataset KIND   fashion (default), mnist (four IDX files), cifar10 (binary
//	                batches) or folder (PNG/JPEG images, one sub-folder per
//	                class, resized to the model's input; train/ and test/
//	                sub-folders if present, else 20% of each class held out
//	                for testing)
//	-data DIR       where the data set is; fashion's default is
//	                /usr/share/datasets/fashion-mnist if present, else the
//	                subset embedded in runtime/data
//	-val FRAC       hold out FRAC of each class of the training set as a
//	                validation split, reported every epoch (0)
//	-epochs N       epochs to train (5)
//	-batch N        mini-batch size, at most the model's compiled batch
//	                (64, or the compiled batch if that is smaller)
//	-lr X           base learning rate (0.05)
//	-schedule SPEC  learning-rate schedule (runtime.ParseSchedule; epochs
//	                counted from 0): constant, step:E1,E2:GAMMA, exp:GAMMA,
//	                inv:K (1/t), cosine:T0[:TMULT[:MIN]] (SGDR),
//	                warmup:E[:START]+SCHED; evaluated at every batch
//	                (default: the steps of -lr-steps and -lr-gamma)
//	-lr-steps LIST  default schedule: comma-separated epochs, counted from 1,
//	                from which the learning rate is multiplied by -lr-gamma
//	                ("4"; "" for none)
//	-lr-gamma X     default schedule: factor of each step (0.1)
//	-warmup E       linear warm-up over E epochs, from 1% of the rate, in
//	                front of any schedule (0)
//	-momentum X     SGD momentum (0.9)
//	-nesterov       Nesterov momentum
//	-wd X           L2 weight decay of every parameter, in the optimiser (0)
//	-l1 X           L1 penalty X*sum|w| on the weights (0)
//	-elastic L:B    elastic-net penalty L*sum(B*w^2 + |w|) on the weights
//	-init SCHEME    re-initialise every weight (runtime.ParseInit): const:V,
//	                normal:STD, xavier_normal, xavier_uniform,
//	                kaiming_normal[:fan_out], kaiming_uniform[:fan_out], ...
//	-preprocess P   none, pixel (subtract the mean image; default) or channel
//	                (subtract each channel's mean)
//	-std            also divide by the standard deviation (per pixel or
//	                per channel)
//	-mean           false is -preprocess none (true)
//	-augment SPEC   augmentation of each training batch (runtime/augment's
//	                Parse): flip, vflip, crop:PAD, scale:S, rotate:DEG,
//	                translate:F, jitter:J, comma-separated ("")
//	-seed N         seed of initialisation, shuffling, augmentation and
//	                dropout (0)
//	-threads N      worker threads of the kernels; 0 keeps the runtime's
//	                default, CNNC_THREADS or all cores (0)
//	-save PATH      checkpoint written after every epoch (default
//	                "<model>.safetensors" in the current directory, or the
//	                -resume checkpoint; "" for none)
//	-load PATH      start from a checkpoint's weights and preprocessing
//	-resume PATH    continue the run that wrote the checkpoint
//	-eval-only      evaluate the -load checkpoint (or -ensemble) on the
//	                test set and exit
//	-ensemble P,P   with -eval-only: checkpoints of the model evaluated
//	                together, by the mean of their soft-max probabilities
//	-tta flip       score each evaluated image by the mean probabilities of
//	                it and its mirror image ("": none)
//	-snapshots K    with a cosine schedule: save the model at the end of
//	                every period as "<checkpoint>.cycle<E>.safetensors" and
//	                evaluate the last K together after training (0: none)
//	-metrics PATH   one JSON object per epoch, one per line (default
//	                "<checkpoint>.metrics.jsonl" beside the checkpoint; ""
//	                for none)
//	-metrics-csv P  the same as CSV (default "<checkpoint>.metrics.csv")
//	-limit N        use only the first N training and N test images (0: all)
//	-quiet          print only the final line
//	-device D       cpu (default), cuda (an NVIDIA GPU) or auto (cuda if a
//	                GPU is usable, else cpu); see "The GPU"
//
// The learning-rate steps of -lr-steps count epochs from 1, as the anchor's
// comments do: with -epochs 5 -lr-steps 4, epochs 1 to 3 use -lr and epochs
// 4 and 5 use -lr times -lr-gamma, which is PyTorch's StepLR(step_size=3,
// gamma=0.1) and -schedule step:3:0.1. -schedule counts from 0, as
// PyTorch's schedulers do.
//
// # The GPU
//
// -device cuda trains and evaluates the model of WithCUDA, the generated
// package's CUDAModel: TrainStep, the SGD step (DeviceModel.SGDStep, with
// the schedule's learning rate at every step, -momentum, -nesterov and -wd)
// and Predict all run on the GPU, and the weights come to the host only to
// be counted, re-initialised by -init, loaded by -load or -resume (then
// copied back with SyncToDevice) and saved in checkpoints. The data,
// augmentation and preprocessing stay on the host. Without a usable GPU,
// -device cuda fails with "no usable GPU: <reason>; use -device cpu";
// -device auto trains on the CPU instead and says why in one line. So does
// -device auto for what the GPU path cannot do, which -device cuda
// refuses: -l1 and -elastic (their gradients are added on the host). A
// checkpoint of a run on the GPU holds what one of a run on the CPU holds,
// the SGD momentum buffers too (copied from the GPU), and says
// "cnnc.device" "cuda": -load takes its weights and -resume continues its
// run on either device. -device is not part of the run that a checkpoint
// records: a resumed run chooses again.
//
// # Regularisation
//
// -wd is the optimiser's weight decay, on every trainable parameter as
// PyTorch's SGD does: the gradient of (wd/2)*sum w^2, ir's l2 term with
// lambda = wd/2. -l1 and -elastic act on the weights only (runtime.IsWeight:
// trainable, named "*.weight", two or more dimensions), not on biases or
// batch-norm scales: after the backward pass, lambda*sign(w) and
// lambda*(2*beta*w + sign(w)) are added to their gradients, which is the
// backward of ir's l1 and elasticnet terms (tested against the reference
// evaluator).
//
// # Initialisation
//
// A model is initialised as its model file declares, seeded by -seed. -init
// re-fills every weight (runtime.IsWeight) with one scheme, with each
// weight's fans from runtime.Fans, drawing from a stream of -seed apart from
// the model's; biases and batch-norm parameters keep the model's values.
//
// # Checkpoints
//
// A checkpoint is a safetensors file, written atomically (a temporary file,
// synced and renamed) after every epoch. It holds the model's State
// (parameters and buffers, under the names PyTorch's state_dict uses) and
// the preprocessing the model was trained with: the metadata entry
// "cnnc.preprocess", "none", "pixel" or "channel" (older checkpoints say
// "mean" for "pixel"), and the tensors "cnnc.preprocess.mean" and, with
// -std, "cnnc.preprocess.std", of shape [C, H, W] per pixel or [C, 1, 1] per
// channel (data.Preprocess). -load and -eval-only apply the checkpoint's
// preprocessing whatever -preprocess says, so a model is evaluated on the
// inputs it was trained on. A checkpoint without that entry, such as one
// written by PyTorch, gets the preprocessing the flags ask for. Tensors
// named "cnnc.*" and PyTorch's "*.num_batches_tracked" are not model state;
// any other tensor the model lacks, a missing tensor or a shape that
// differs is an error that names the tensor. -load does not restore the
// optimiser or the schedule: a loaded run starts afresh from the loaded
// weights.
//
// For -resume a checkpoint also holds the SGD momentum buffers (tensors
// "cnnc.optim.<param>.momentum_buffer") and, as metadata, the optimiser's
// step count, the epochs finished ("cnnc.epoch"), the batches trained
// ("cnnc.run.step", which seeds augmentation), the model's dropout step
// counter when it has one (a Step and SetStep method; "cnnc.dropout.step"),
// the schedule and the flags that define the run ("cnnc.run.args"). The
// shuffling order is not stored: it follows from -seed and the number of
// epochs finished, and the trainer replays it (data.Batcher.SkipEpoch).
// -resume PATH parses the run's flags, then the ones given with it, which
// override them (typically -epochs), and trains the remaining epochs,
// saving to PATH unless -save says otherwise. A run resumed after any epoch
// ends bit for bit where the uninterrupted run ends, with the same
// threads.
//
// The metrics files have, for each epoch counted from 1, the keys epoch,
// loss, train_acc, val_acc (with -val), test_acc (fractions in [0, 1]), lr,
// images_per_sec (training throughput), seconds (the epoch's wall time,
// evaluation included) and train_seconds; the CSV has them as columns, in
// that order, with an empty val_acc without -val. Each row is written when
// its epoch ends. A resumed run keeps the rows of the epochs its checkpoint
// holds and appends the rest.
package trainer
