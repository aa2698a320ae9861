package vggsmall

//go:generate go run github.com/cnnc/cnnc/cmd/cnnc compile -func VGGSmall -o ../../gen/vggsmall model.go
