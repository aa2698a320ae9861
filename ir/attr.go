package ir

// attrInfo says how the text form and JSON name an attribute and where it
// lives in [Attrs]. The printers and parsers in text.go and json.go work
// on the field's Go type (string, int, [2]int, float64, bool, uint64,
// InitSpec), so a new attribute needs only a line here.
type attrInfo struct {
	name  string             // key in the text form and in JSON
	field func(a *Attrs) any // pointer to the field in a
}

var attrTable = [...]attrInfo{
	attrName:     {"name", func(a *Attrs) any { return &a.Name }},
	attrClasses:  {"classes", func(a *Attrs) any { return &a.Classes }},
	attrInit:     {"init", func(a *Attrs) any { return &a.Init }},
	attrValue:    {"value", func(a *Attrs) any { return &a.Value }},
	attrStride:   {"stride", func(a *Attrs) any { return &a.Stride }},
	attrPad:      {"pad", func(a *Attrs) any { return &a.Pad }},
	attrDilation: {"dilation", func(a *Attrs) any { return &a.Dilation }},
	attrGroups:   {"groups", func(a *Attrs) any { return &a.Groups }},
	attrKernel:   {"kernel", func(a *Attrs) any { return &a.Kernel }},
	attrEps:      {"eps", func(a *Attrs) any { return &a.Eps }},
	attrMomentum: {"momentum", func(a *Attrs) any { return &a.Momentum }},
	attrAlpha:    {"alpha", func(a *Attrs) any { return &a.Alpha }},
	attrKeep:     {"keep", func(a *Attrs) any { return &a.Keep }},
	attrClassic:  {"classic", func(a *Attrs) any { return &a.Classic }},
	attrSeed:     {"seed", func(a *Attrs) any { return &a.Seed }},
	attrLambda:   {"lambda", func(a *Attrs) any { return &a.Lambda }},
	attrBeta:     {"beta", func(a *Attrs) any { return &a.Beta }},
	attrMargin:   {"margin", func(a *Attrs) any { return &a.Margin }},
	attrIndex:    {"index", func(a *Attrs) any { return &a.Index }},
}

func (at attribute) String() string {
	if int(at) < len(attrTable) {
		return attrTable[at].name
	}
	return "attribute?"
}

// attrByName returns the attribute with the given text name.
func attrByName(name string) (attribute, bool) {
	for at := range attrTable {
		if attrTable[at].name == name {
			return attribute(at), true
		}
	}
	return 0, false
}

// opAttrs returns the attributes op uses, or nil for an unknown op.
func opAttrs(op Op) []attribute {
	if op >= numOps {
		return nil
	}
	return opTable[op].attrs
}

// hasAttr reports whether op uses the attribute.
func hasAttr(op Op, at attribute) bool {
	for _, a := range opAttrs(op) {
		if a == at {
			return true
		}
	}
	return false
}
