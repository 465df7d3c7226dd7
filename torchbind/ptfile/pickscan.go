package ptfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// The unpickler allocates the buffer for a length-prefixed argument before it
// reads it, so a corrupt length could make it allocate gigabytes. scanPickle
// walks the opcodes of a pickle first and checks every length against the
// bytes that are really there, and also finds where the pickle ends.

// Argument layouts of the pickle opcodes (see Python's pickletools).
const (
	argNone    = iota
	argFixed   // n bytes
	argLine    // one newline-terminated line
	argLines2  // two newline-terminated lines
	argLen1    // 1-byte length, then that many bytes
	argLen4    // 4-byte little-endian length, then that many bytes
	argLen8    // 8-byte little-endian length, then that many bytes
	argFrame   // 8-byte frame length; the frame holds further opcodes
	argInvalid // not an opcode
)

type opArg struct {
	kind int
	n    int
}

var opArgs [256]opArg

func init() {
	for i := range opArgs {
		opArgs[i] = opArg{kind: argInvalid}
	}
	for _, op := range []byte("(.012NQRabd}el]ostu)\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98") {
		opArgs[op] = opArg{kind: argNone}
	}
	fixed := map[byte]int{
		'J': 4, 'K': 1, 'M': 2, 'G': 8, 'h': 1, 'j': 4, 'q': 1, 'r': 4,
		0x80: 1, 0x82: 1, 0x83: 2, 0x84: 4,
	}
	for op, n := range fixed {
		opArgs[op] = opArg{kind: argFixed, n: n}
	}
	for _, op := range []byte("FILPSVgp") {
		opArgs[op] = opArg{kind: argLine}
	}
	opArgs['c'] = opArg{kind: argLines2}
	opArgs['i'] = opArg{kind: argLines2}
	for _, op := range []byte{'U', 'C', 0x8a, 0x8c} {
		opArgs[op] = opArg{kind: argLen1}
	}
	for _, op := range []byte{'T', 'X', 'B', 0x8b} {
		opArgs[op] = opArg{kind: argLen4}
	}
	for _, op := range []byte{0x8d, 0x8e, 0x96} {
		opArgs[op] = opArg{kind: argLen8}
	}
	opArgs[0x95] = opArg{kind: argFrame}
}

// scanPickle checks the pickle at the start of data and returns its length,
// up to and including the STOP opcode.
func scanPickle(data []byte) (int, error) {
	pos := 0
	need := func(n uint64) error {
		if n > uint64(len(data)-pos) {
			return fmt.Errorf("truncated pickle: opcode at byte %d needs %d bytes, %d left", pos, n, len(data)-pos)
		}
		return nil
	}
	line := func() error {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return fmt.Errorf("truncated pickle: unterminated line at byte %d", pos)
		}
		pos += i + 1
		return nil
	}
	for pos < len(data) {
		op := data[pos]
		start := pos
		pos++
		a := opArgs[op]
		switch a.kind {
		case argNone:
			if op == '.' {
				return pos, nil
			}
		case argFixed:
			if err := need(uint64(a.n)); err != nil {
				return 0, err
			}
			pos += a.n
		case argLine:
			if err := line(); err != nil {
				return 0, err
			}
		case argLines2:
			if err := line(); err != nil {
				return 0, err
			}
			if err := line(); err != nil {
				return 0, err
			}
		case argLen1, argLen4, argLen8, argFrame:
			width := 8
			switch a.kind {
			case argLen1:
				width = 1
			case argLen4:
				width = 4
			}
			if err := need(uint64(width)); err != nil {
				return 0, err
			}
			var n uint64
			switch width {
			case 1:
				n = uint64(data[pos])
			case 4:
				n = uint64(binary.LittleEndian.Uint32(data[pos:]))
			case 8:
				n = binary.LittleEndian.Uint64(data[pos:])
			}
			pos += width
			if err := need(n); err != nil {
				return 0, err
			}
			if a.kind != argFrame { // a frame's content is more opcodes
				pos += int(n)
			}
		default:
			return 0, fmt.Errorf("invalid pickle opcode 0x%02x at byte %d", op, start)
		}
	}
	return 0, fmt.Errorf("truncated pickle: no STOP opcode in %d bytes", len(data))
}
