// Package interop holds the tests that weights move between PyTorch and
// cnnc: a state_dict saved by PyTorch loads into a generated model, which
// then predicts PyTorch's logits. It has no code of its own.
package interop
