//go:build amd64 && !purego

#include "textflag.h"

// func scanBlocksAVX2(data *byte, nblocks int, fs byte, lines, seps *uint64)
//
// For each of nblocks 64-byte blocks at data, writes to lines one bit per
// byte set where the byte is CR or LF, and to seps one bit per byte set where
// it equals fs (bit i of word k for byte 64*k+i). Reads exactly 64*nblocks
// bytes and writes exactly nblocks words to each of lines and seps.
TEXT ·scanBlocksAVX2(SB), NOSPLIT, $0-40
	MOVQ    data+0(FP), SI
	MOVQ    nblocks+8(FP), CX
	MOVBLZX fs+16(FP), AX
	MOVQ    lines+24(FP), DI
	MOVQ    seps+32(FP), DX
	TESTQ   CX, CX
	JZ      done

	// Only VEX-encoded instructions below: mixing in legacy SSE ones costs
	// a state transition each time.
	MOVL         $0x0d, BX
	VMOVD        BX, X1
	VPBROADCASTB X1, Y1 // CR
	MOVL         $0x0a, BX
	VMOVD        BX, X2
	VPBROADCASTB X2, Y2 // LF
	VMOVD        AX, X3
	VPBROADCASTB X3, Y3 // field separator

loop:
	VMOVDQU   (SI), Y4
	VMOVDQU   32(SI), Y5
	VPCMPEQB  Y4, Y1, Y6
	VPCMPEQB  Y4, Y2, Y7
	VPOR      Y6, Y7, Y6
	VPCMPEQB  Y5, Y1, Y8
	VPCMPEQB  Y5, Y2, Y9
	VPOR      Y8, Y9, Y8
	VPMOVMSKB Y6, R8
	VPMOVMSKB Y8, R9
	SHLQ      $32, R9
	ORQ       R9, R8
	MOVQ      R8, (DI)
	VPCMPEQB  Y4, Y3, Y6
	VPCMPEQB  Y5, Y3, Y8
	VPMOVMSKB Y6, R8
	VPMOVMSKB Y8, R9
	SHLQ      $32, R9
	ORQ       R9, R8
	MOVQ      R8, (DX)
	ADDQ      $64, SI
	ADDQ      $8, DI
	ADDQ      $8, DX
	DECQ      CX
	JNZ       loop
	VZEROUPPER

done:
	RET
