package lenet5

//go:generate go run github.com/cnnc/cnnc/cmd/cnnc compile -func LeNet5 -o ../../gen/lenet5 model.go
//go:generate go run github.com/cnnc/cnnc/cmd/cnnc compile -func LeNet5BN -o ../../gen/lenet5bn model.go
