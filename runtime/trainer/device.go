package trainer

import (
	"fmt"
	"io"
	"strings"

	"github.com/cnnc/cnnc/runtime"
)

// The values of -device.
const (
	deviceCPU  = "cpu"
	deviceCUDA = "cuda"
	deviceAuto = "auto"
)

var devices = []string{deviceCPU, deviceCUDA, deviceAuto}

// A DeviceModel is a model whose parameters, gradients and optimiser state
// live on an accelerator, as a generated package's CUDAModel does. Params,
// Buffers and State copy the values to the host when called; changes to
// them reach the device only through SyncToDevice. TrainStep leaves the
// gradients on the device, and SGDStep applies them there.
type DeviceModel interface {
	Model
	// SGDStep applies one step of runtime.SGD's update to every
	// parameter on the device (PyTorch's torch.optim.SGD, dampening 0).
	// The first call starts the momentum buffers at the gradient.
	SGDStep(lr, momentum float64, nesterov bool, weightDecay float64) error
	// SyncToDevice copies the host values of State's tensors to the
	// device.
	SyncToDevice() error
	// SGDState copies the SGD momentum buffers from the device and
	// returns them, named "<param>.momentum_buffer" as runtime.SGD.State
	// names them, with the number of SGD steps taken (while 0 the buffers
	// count as empty). SetSGDState copies the host values of those
	// tensors back and sets the number of steps, as when a run resumes.
	SGDState() ([]*runtime.Param, int, error)
	SetSGDState(steps int) error
	// Step and SetStep are the step counter that selects the dropout
	// masks.
	Step() uint64
	SetStep(step uint64)
	// Staging returns host memory for a full batch of input that the
	// device reads directly (page-locked), or nil: the trainer writes its
	// batches there, so that TrainStep need not copy them first.
	Staging() []float32
	// Close frees the device's memory.
	Close() error
}

// An Option gives Main and Run more than the CPU model.
type Option func(*options)

type options struct {
	newCUDA func(seed uint64) (DeviceModel, error)
}

// WithCUDA gives the trainer the generated package's GPU constructor, for
// -device cuda and -device auto:
//
//	trainer.Main(lenet5.NewSeeded, trainer.WithCUDA(lenet5.NewCUDASeeded))
//
// newCUDA returns the model on the GPU, initialised from seed bit for bit
// as the CPU constructor initialises it, or an error when there is no
// usable GPU.
func WithCUDA[D DeviceModel](newCUDA func(seed uint64) (D, error)) Option {
	return func(o *options) {
		o.newCUDA = func(seed uint64) (DeviceModel, error) {
			m, err := newCUDA(seed)
			if err != nil {
				return nil, err
			}
			return m, nil
		}
	}
}

// gpuUnsupported returns why the run that c describes cannot train on the
// GPU, or "" if it can.
func gpuUnsupported(c *config, hasCUDA bool) string {
	switch {
	case !hasCUDA:
		return "this trainer was built without the model's CUDA code (compile the model with cnnc compile without -cuda=false)"
	case c.l1 != 0:
		return "-l1 is not supported on the GPU (its gradient is added on the host)"
	case c.elastic[0] != 0:
		return "-elastic is not supported on the GPU (its gradient is added on the host)"
	}
	return ""
}

// openDevice returns the model on the accelerator that -device asks for, or
// nil to train on the CPU. With -device auto it falls back to the CPU,
// saying why in one line to out; with -device cuda it fails instead.
func openDevice(c *config, newCUDA func(seed uint64) (DeviceModel, error), out io.Writer) (DeviceModel, error) {
	if c.device == deviceCPU {
		return nil, nil
	}
	if why := gpuUnsupported(c, newCUDA != nil); why != "" {
		if c.device == deviceCUDA {
			return nil, fmt.Errorf("-device cuda: %s; use -device cpu", why)
		}
		fmt.Fprintf(out, "note: -device auto: %s; training on the CPU\n", why)
		return nil, nil
	}
	m, err := newCUDA(c.seed)
	if err != nil {
		// runtime/cuda's errors end with the same advice.
		reason := strings.TrimSuffix(err.Error(), "; use -device cpu")
		if c.device == deviceCUDA {
			return nil, fmt.Errorf("no usable GPU: %s; use -device cpu", reason)
		}
		reason, _, _ = strings.Cut(reason, "\n")
		fmt.Fprintf(out, "note: -device auto: no usable GPU (%s); training on the CPU\n", reason)
		return nil, nil
	}
	return m, nil
}
