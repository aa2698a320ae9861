module github.com/cnnc/cnnc

go 1.26.0

require (
	github.com/dave/jennifer v1.7.1 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/tools v0.52.0 // indirect
)
