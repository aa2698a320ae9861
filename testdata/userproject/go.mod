module example.com/userproject

go 1.26.0

require github.com/cnnc/cnnc v0.0.0

require (
	github.com/dave/jennifer v1.7.1 // indirect
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/tools v0.52.0 // indirect
)

replace github.com/cnnc/cnnc => ../..

tool github.com/cnnc/cnnc/cmd/cnnc
