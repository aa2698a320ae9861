// Package cuda implements cnnc's GPU target: it turns a model's training
// graph and inference graph into CUDA C, one kernel per computing node,
// and a runtime/cuda Plan that launches them, and renders both as the
// files of a Go package.
//
// Generate returns two files. model.cu holds the kernels: every shape, stride
// and loop bound is a constant, and only n, the number of samples of a
// call, is an argument, so a call may pass a partial batch. Convolutions,
// forward and both backward, are tiled implicit GEMMs through shared
// memory (cnnc_gemm_tile in common.cu) that read the image in place, with
// no im2col buffer, the taps' offsets from a table in shared memory; linear
// layers are the same GEMM over plain matrices, their reduction split over
// chunks where their tiles alone would leave most of the GPU idle.
// The comment before each kernel gives the node it computes and its launch
// (grid as a function of n, block, and the __launch_bounds__ that match).
//
// With Config.TF32 (cnnc compile -cuda-tf32) the convolutions' products
// run on the tensor cores instead (cnnc_gemm_tile_tf32 in tf32.cu, for
// compute capability 8.0 and later): mma.sync over TF32 operands, each
// operand split into a TF32 number and a TF32 remainder so that three
// products a term keep float32's accuracy; plain TF32 errs by several
// percent on weight gradients, whose sums over a batch cancel.
//
// Every reduction that feeds a gradient, a statistic or the loss runs in a
// fixed order: weight gradients whose sums run over the batch are split
// over fixed chunks whose partial tiles a second kernel adds in order;
// bias gradients, batch-norm statistics and penalties sum fixed chunks
// per channel with a tree in shared memory and add the chunks in order in
// a second kernel; losses sum their rows in one block. No kernel uses
// floating-point atomics, so a step gives the same bits every time.
// Dropout masks are recomputed from runtime.Uniform01's hash (seed, step,
// index), so forward and backward, CPU and GPU, draw the same masks.
//
// model_cuda_gen.go embeds model.cu, holds the plan as a Go literal and
// declares CUDAModel (NewCUDA, TrainStep, Predict, SGDStep, Params,
// Buffers, State, Load, Save, Info) over runtime/cuda's Model. It imports
// only the runtime and builds everywhere; NVRTC compiles model.cu for the
// GPU at hand when a CUDAModel is made. cnnc compile writes both files
// into the Go target's package (unless -cuda=false), and the package's
// cmd/train hands NewCUDASeeded to runtime/trainer for -device cuda.
//
// Without a GPU the output can still be checked: prelude.h lets Debian's
// clang compile model.cu to PTX (the tests do it for every model and for
// graphs that use every op), and the tests also compile model.cu for the
// host with a small CUDA emulator (testdata/emu) and run it through
// runtime/cuda against the reference evaluator.
package cuda
