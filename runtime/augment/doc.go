// Package augment implements data augmentation for cnnc's trainers: random
// flips, crops with zero padding, random resized crops, rotations,
// translations and colour jitter, applied to one image at a time and
// composed into a Pipeline.
//
// Images are float32 in CHW order, as runtime/data stores them, with values
// in [0, 1]: augment a batch before any mean subtraction or
// standardisation (data.Preprocess), since geometric transforms fill with
// 0 (black) and colour jitter clamps to [0, 1], as torchvision does for
// float images.
//
// Every random choice is drawn from a runtime.RNG that ApplyBatch seeds for
// each sample from (seed, step, sample index) alone, so a batch is
// augmented the same way whatever the number of workers, and a run is
// reproducible from its seed. Applying a Pipeline to a sample does not
// allocate: transforms write from a source buffer into a destination buffer,
// and the two scratch images they alternate between belong to a Scratch,
// one per worker.
//
// Parse reads the trainer's -augment flag, such as
// "flip,crop:4,rotate:15,jitter:0.2"; its doc gives the grammar.
package augment
