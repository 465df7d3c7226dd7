package ptfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The unpickler allocates the buffer for a length-prefixed argument before it
// reads it, so a corrupt length could make it allocate gigabytes, and it
// decodes long integers in time quadratic in their length. scanPickle walks
// the opcodes of a pickle first and checks that each opcode's work is
// bounded: every length against the bytes that are really there, integers
// and numbers no longer than any tensor file needs, frames not nested (so
// that no byte is copied twice) and marks nested no deeper than maxNesting
// (so that the unpickler's stacks grow at most linearly with the input). It
// also finds where the pickle ends.

// maxNumberLen bounds the argument of the opcodes that carry an integer or
// a float: the bytes of LONG1 and LONG4, and the text of INT, LONG and
// FLOAT. A 64-bit int takes 8 bytes (20 digits); the legacy format's magic
// number takes 10.
const maxNumberLen = 64

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
	for _, op := range []byte("FILPSVgp") { // FLOAT, INT, LONG: at most maxNumberLen
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
	sc := pickleScan{data: data}
	for sc.pos < len(data) {
		op := data[sc.pos]
		start := sc.pos
		sc.pos++
		a := opArgs[op]
		var err error
		switch a.kind {
		case argNone:
			if op == '.' {
				return sc.pos, nil
			}
			err = sc.marks(op)
		case argFixed:
			err = sc.need(uint64(a.n))
			sc.pos += a.n
		case argLine:
			err = sc.line(op)
		case argLines2:
			if err = sc.line(op); err == nil {
				err = sc.line(op)
			}
			if err == nil {
				err = sc.marks(op)
			}
		case argLen1, argLen4, argLen8, argFrame:
			err = sc.counted(op, a.kind)
		default:
			err = fmt.Errorf("invalid pickle opcode 0x%02x", op)
		}
		if err != nil {
			return 0, fmt.Errorf("opcode at byte %d: %w", start, err)
		}
	}
	return 0, fmt.Errorf("truncated pickle: no STOP opcode in %d bytes", len(data))
}

// pickleScan is the state of scanPickle.
type pickleScan struct {
	data     []byte
	pos      int // of the next opcode or argument byte
	frameEnd int // end of the current frame, or 0
	depth    int // MARKs not yet consumed
}

func (sc *pickleScan) need(n uint64) error {
	if n > uint64(len(sc.data)-sc.pos) {
		return fmt.Errorf("truncated pickle: needs %d bytes, %d left", n, len(sc.data)-sc.pos)
	}
	return nil
}

// line skips a newline-terminated argument of op.
func (sc *pickleScan) line(op byte) error {
	i := bytes.IndexByte(sc.data[sc.pos:], '\n')
	if i < 0 {
		return errors.New("truncated pickle: unterminated line")
	}
	if (op == 'F' || op == 'I' || op == 'L') && i > maxNumberLen {
		return fmt.Errorf("number of %d characters in the pickle; at most %d are supported", i, maxNumberLen)
	}
	sc.pos += i + 1
	return nil
}

// counted skips a length-prefixed argument, or the header of a frame.
func (sc *pickleScan) counted(op byte, kind int) error {
	opStart := sc.pos - 1
	width := 8
	switch kind {
	case argLen1:
		width = 1
	case argLen4:
		width = 4
	}
	if err := sc.need(uint64(width)); err != nil {
		return err
	}
	var n uint64
	switch width {
	case 1:
		n = uint64(sc.data[sc.pos])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(sc.data[sc.pos:]))
	case 8:
		n = binary.LittleEndian.Uint64(sc.data[sc.pos:])
	}
	sc.pos += width
	if err := sc.need(n); err != nil {
		return err
	}
	switch {
	case (op == 0x8a || op == 0x8b) && n > maxNumberLen: // LONG1, LONG4
		return fmt.Errorf("integer of %d bytes in the pickle; at most %d are supported", n, maxNumberLen)
	case kind == argFrame:
		// A frame's content is more opcodes; frames do not nest.
		if opStart < sc.frameEnd {
			return errors.New("malformed pickle: a frame starts inside another frame")
		}
		sc.frameEnd = sc.pos + int(n)
		return nil
	}
	sc.pos += int(n)
	return nil
}

// marks follows the nesting of MARKs: the opcodes that push one and those
// that consume the items above the last one.
func (sc *pickleScan) marks(op byte) error {
	switch op {
	case '(': // MARK
		if sc.depth++; sc.depth > maxNesting {
			return fmt.Errorf("marks nested more than %d deep in the pickle", maxNesting)
		}
	case '1', 'e', 'u', 't', 'l', 'd', 'o', 'i', 0x90, 0x91: // POP_MARK, APPENDS, SETITEMS, TUPLE, LIST, DICT, OBJ, INST, ADDITEMS, FROZENSET
		if sc.depth > 0 {
			sc.depth--
		}
	}
	return nil
}
