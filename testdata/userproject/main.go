// Command userproject trains the network that cnnc generated from
// model/model.go for a few steps on random data and checks that the loss
// goes down. Run go generate ./... first.
package main

import (
	"fmt"
	"math/rand/v2"
	"os"

	"example.com/userproject/net"
	"github.com/cnnc/cnnc/runtime"
)

func main() {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, net.Batch*net.SampleSize)
	labels := make([]int32, net.Batch)
	for i := range labels {
		// The class shows in the mean brightness of the image.
		labels[i] = int32(rng.IntN(net.Classes))
		for j := range net.SampleSize {
			x[i*net.SampleSize+j] = float32(rng.NormFloat64()) + float32(labels[i])
		}
	}

	m := net.New()
	opt := runtime.NewSGD(m.Params(), 0.05, 0.9, false, 0)
	first := m.TrainStep(x, labels)
	opt.Step()
	last := first
	for range 20 {
		last = m.TrainStep(x, labels)
		opt.Step()
	}
	fmt.Printf("loss %.4f -> %.4f\n", first, last)
	if !(last < first) {
		fmt.Println("FAIL: the loss did not go down")
		os.Exit(1)
	}
	if got, want := len(m.Predict(x)), net.Batch*net.Classes; got != want {
		fmt.Printf("FAIL: Predict returned %d logits, want %d\n", got, want)
		os.Exit(1)
	}
	fmt.Println("OK")
}
