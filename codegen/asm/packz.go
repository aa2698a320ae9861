package asm

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// PackZ adds the AVX-512 forms of the implicit im2col's B packing to ctx:
// packB16OffsZ and packB16SegsZ take the arguments of packB16Offs and
// packB16Segs and give the same panels, a ZMM per panel row. packB16SegsZ
// turns each run's lane mask into an opmask once per panel, where the AVX2
// form reloads two mask vectors and ORs two masked loads per run and row.
func PackZ(ctx *build.Context) {
	packB16OffsZ(ctx)
	packB16SegsZ(ctx)
}

func packB16OffsZ(ctx *build.Context) {
	const name = "packB16OffsZ"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(kc, panels int, src *float32, koffs, poffs *int32, dst *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(name + " is packB16Offs in ZMM registers (AVX-512F).")
	var (
		np     = reg.RBX // panels left in this row
		stride = reg.R9  // panel stride in bytes
		ko     = reg.R10 // walks koffs
		po     = reg.R11 // walks poffs
		d      = reg.R12 // walks the panels at one p
		row    = reg.R13 // src + 4*koffs[p]
		off    = reg.RAX
	)
	ctx.Load(ctx.Param("kc"), pkc)
	ctx.Load(ctx.Param("src"), psrc)
	ctx.Load(ctx.Param("koffs"), ko)
	ctx.Load(ctx.Param("dst"), pdst)
	ctx.MOVQ(pkc, stride)
	ctx.SHLQ(operand.U8(log2(4*NR)), stride)
	ctx.Label(name + "row")
	ctx.Load(ctx.Param("panels"), np)
	ctx.Load(ctx.Param("poffs"), po)
	ctx.MOVLQSX(operand.Mem{Base: ko}, row)
	ctx.LEAQ(operand.Mem{Base: psrc, Index: row, Scale: 4}, row)
	ctx.MOVQ(pdst, d)
	ctx.Label(name + "panel")
	ctx.MOVLQSX(operand.Mem{Base: po}, off)
	ctx.VMOVUPS(operand.Mem{Base: row, Index: off, Scale: 4}, reg.Z0)
	ctx.VMOVUPS(reg.Z0, operand.Mem{Base: d})
	ctx.ADDQ(operand.U8(4), po)
	ctx.ADDQ(stride, d)
	ctx.DECQ(np)
	ctx.JNZ(operand.LabelRef(name + "panel"))
	ctx.ADDQ(operand.U8(4), ko)
	ctx.ADDQ(operand.U8(4*NR), pdst)
	ctx.DECQ(pkc)
	ctx.JNZ(operand.LabelRef(name + "row"))
	ctx.VZEROUPPER()
	ctx.RET()
}

func packB16SegsZ(ctx *build.Context) {
	const name = "packB16SegsZ"
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(kc, nseg int, src *float32, koffs, shifts, masks *int32, dst *float32)")
	ctx.Pragma("noescape")
	ctx.Doc(name+" is packB16Segs in ZMM registers (AVX-512F and DQ); shifts and masks",
		fmt.Sprintf("must hold %d runs even where nseg is smaller.", SegsMax))
	var (
		ko     = reg.R8 // walks koffs
		ns     = reg.R11
		row    = reg.RBX // src + 4*koffs[p]
		off    = reg.RAX
		shifts = []reg.GPPhysical{reg.R12, reg.R13, reg.R14, reg.R15}
		masks  = []reg.OpmaskPhysical{reg.K1, reg.K2, reg.K3, reg.K4}
	)
	ctx.Load(ctx.Param("kc"), pkc)
	ctx.Load(ctx.Param("src"), psrc)
	ctx.Load(ctx.Param("koffs"), ko)
	ctx.Load(ctx.Param("dst"), pdst)
	ctx.Load(ctx.Param("nseg"), ns)
	ctx.Load(ctx.Param("shifts"), reg.R9)
	ctx.Load(ctx.Param("masks"), reg.R10)
	for s := range SegsMax {
		ctx.MOVLQSX(operand.Mem{Base: reg.R9, Disp: 4 * s}, shifts[s])
		ctx.VMOVDQU32(operand.Mem{Base: reg.R10, Disp: 4 * NR * s}, reg.Z1)
		ctx.VPMOVD2M(reg.Z1, masks[s])
	}
	for n := 1; n < SegsMax; n++ {
		ctx.CMPQ(ns, operand.U8(n))
		ctx.JE(operand.LabelRef(fmt.Sprintf("%s%d", name, n)))
	}
	for n := SegsMax; n >= 1; n-- {
		loop := fmt.Sprintf("%s%d", name, n)
		ctx.Label(loop)
		ctx.MOVLQSX(operand.Mem{Base: ko}, off)
		ctx.LEAQ(operand.Mem{Base: psrc, Index: off, Scale: 4}, row)
		for s := range n {
			m := operand.Mem{Base: row, Index: shifts[s], Scale: 4}
			if s == 0 {
				ctx.VMOVUPS_Z(m, masks[s], reg.Z0)
			} else {
				ctx.VMOVUPS(m, masks[s], reg.Z0)
			}
		}
		ctx.VMOVUPS(reg.Z0, operand.Mem{Base: pdst})
		ctx.ADDQ(operand.U8(4), ko)
		ctx.ADDQ(operand.U8(4*NR), pdst)
		ctx.DECQ(pkc)
		ctx.JNZ(operand.LabelRef(loop))
		ctx.JMP(operand.LabelRef(name + "done"))
	}
	ctx.Label(name + "done")
	ctx.VZEROUPPER()
	ctx.RET()
}
