package mlp10

//go:generate go run github.com/cnnc/cnnc/cmd/cnnc compile -func MLP10 -o ../../gen/mlp10 model.go
