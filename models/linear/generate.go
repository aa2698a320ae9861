package linear

//go:generate go run github.com/cnnc/cnnc/cmd/cnnc compile -func Softmax -o ../../gen/softmax model.go
//go:generate go run github.com/cnnc/cnnc/cmd/cnnc compile -func SVM -o ../../gen/svm model.go
