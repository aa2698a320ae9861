// Package cuda is the CUDA runtime of cnnc: it loads NVIDIA's driver
// (libcuda.so.1) and run-time compiler (libnvrtc) when a program asks for a
// GPU, with no cgo and no CUDA headers, so that everything that imports it
// builds and runs on machines without CUDA and fails only when a GPU is
// asked for, with an error that says so.
//
// The package has two layers.
//
// The lower layer wraps the few driver and NVRTC calls cnnc needs: [Open]
// initialises the driver and retains device 0's primary context; a
// [Device] allocates and copies memory, compiles CUDA C with NVRTC for the
// device's exact architecture (caching the result under
// os.UserCacheDir()/cnnc/cuda, keyed by a SHA-256 of the source, the
// architecture, the options and the NVRTC version), loads modules, looks up
// kernels and launches them, and times work with events. Every error names
// the CUDA or NVRTC call and the library's own error string.
//
// The upper layer runs a compiled model. Package codegen/cuda turns a
// model's training and inference graphs into CUDA C (one kernel per node)
// and a [Plan]: where every tensor lives in one device arena and the
// straight-line sequence of launches that makes a training step, an
// inference pass and an SGD update. [NewModel] compiles the source, lays
// out the arena, initialises the parameters exactly as the Go target does
// (same initialisers, same random stream), and gives the generated
// package's CUDAModel its API: TrainStep, Predict, SGDStep, Params,
// Buffers, State, SGDState (the momentum buffers, for checkpoints), Load
// and Save.
//
// A model launches its kernels on a stream of its own. The first call with
// a full batch (the plan's Batch) captures the launches of the training
// step, or of the inference pass, as a CUDA graph, and later full batches
// replay it with one cuGraphLaunch; partial batches launch kernel by
// kernel. What changes from step to step without changing the launches, the
// training step that selects the dropout masks, is a word of the arena that
// Model.Train writes before each step. Where the driver lacks graphs
// (before CUDA 11.4) or a capture fails, the model launches kernel by
// kernel for the rest of its life; Model.Graphs says which. Setting the
// environment variable CNNC_CUDA_GRAPHS=0 turns graphs off, to compare.
//
// What an inference pass computes from the state alone, such as
// batch-norm folded into a convolution's weights ([Plan].Prepare), it
// computes again only after a training step, an SGD step or an upload
// changed the state.
//
// A model copies its input to the device through a page-locked buffer of
// its own ([Model.Staging]), which the device reads at the bus's rate; a
// caller that writes its batches there saves the copy into it.
// [Model.Profile] times each kernel of a call on its own, with the
// registers and local memory the compiler gave it, to see where a step's
// time goes.
//
// The libraries are found as follows. libcuda.so.1 is opened by name (the
// dynamic linker's search) and then in the usual driver folders; the
// environment variable CNNC_LIBCUDA names another file. NVRTC is tried as
// libnvrtc.so, libnvrtc.so.13, .12 and .11.2, then in /usr/local/cuda*/lib64
// and in the nvidia/cuda_nvrtc and nvidia/cu13 folders of Python
// site-packages; CNNC_NVRTC names another file.
//
// A CUDA context belongs to an OS thread. Every call of this package locks
// the calling goroutine to its thread and makes the device's context
// current for the duration of the call, so a Device may be used from any
// goroutine, though not from two at once.
package cuda
