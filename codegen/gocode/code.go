package gocode

import (
	"regexp"
	"strings"
	"unicode"

	"github.com/dave/jennifer/jen"
)

// qualified matches the package-qualified names that generated code may
// use in raw snippets; code turns each into a jennifer Qual so that
// jennifer writes the imports.
var qualified = regexp.MustCompile(`\b(fmt|math|runtime|gemm|elem)\.([A-Z][A-Za-z0-9_]*)`)

// code returns src as jennifer code, with every fmt.X, math.X, runtime.X,
// gemm.X and elem.X rendered through Qual (runtime is the configured
// runtime package, gemm and elem its sub-packages).
func (g *generator) code(src string) *jen.Statement {
	s := jen.Null()
	last := 0
	for _, m := range qualified.FindAllStringSubmatchIndex(src, -1) {
		if m[0] > last {
			s.Op(src[last:m[0]])
		}
		pkg := src[m[2]:m[3]]
		switch pkg {
		case "runtime":
			pkg = g.cfg.Runtime
		case "gemm", "elem":
			pkg = g.cfg.Runtime + "/" + pkg
		}
		s.Qual(pkg, src[m[4]:m[5]])
		last = m[1]
	}
	if last < len(src) {
		s.Op(src[last:])
	}
	return s
}

// ident turns a name such as "conv1.running_mean" or "conv2d_backward_data"
// into a Go identifier in camel case: "conv1RunningMean".
func ident(name string) string {
	var b strings.Builder
	up := false
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			up = b.Len() > 0
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	s := b.String()
	if s == "" || unicode.IsDigit(rune(s[0])) {
		s = "x" + s
	}
	return s
}

// exported returns name with its first letter in upper case.
func exported(name string) string {
	if name == "" {
		return name
	}
	return strings.ToUpper(name[:1]) + name[1:]
}
