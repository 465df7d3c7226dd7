package ptfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
)

// unpickle runs the pickle p, which must be exactly one pickle, after
// scanPickle has checked that every opcode's work is bounded.
func (l *loader) unpickle(p []byte) (v any, err error) {
	// The unpickler indexes its stacks without checking them everywhere.
	defer func() {
		if r := recover(); r != nil {
			recovered(r)
			v, err = nil, errors.New("malformed pickle: an opcode found too few or unexpected values on the stack")
		}
	}()
	n, err := scanPickle(p)
	if err != nil {
		return nil, err
	}
	if n != len(p) {
		return nil, fmt.Errorf("unexpected %d bytes after the pickle's end", len(p)-n)
	}
	u := pickle.NewUnpickler(&ctxReader{ctx: l.ctx, r: bytes.NewReader(p)})
	u.FindClass = func(module, name string) (any, error) {
		c, err := findClass(module, name)
		return c, own(err)
	}
	u.PersistentLoad = func(pid any) (any, error) {
		s, err := l.persistentLoad(pid)
		return s, own(err)
	}
	v, err = u.Load()
	if err != nil {
		if cerr := l.ctx.Err(); cerr != nil {
			return nil, cerr
		}
		var o ownError
		if errors.As(err, &o) {
			return nil, fmt.Errorf("pickle: %w", o.err)
		}
		return nil, fmt.Errorf("malformed pickle: %s", pickleFault(err))
	}
	return v, nil
}

// ownError marks an error of the loader itself (a class it does not know,
// a bad storage) that passes through the unpickler, so that it can be told
// apart from the unpickler's own errors.
type ownError struct{ err error }

func (e ownError) Error() string { return e.err.Error() }

// own marks err as an ownError; nil stays nil.
func own(err error) error {
	if err == nil {
		return nil
	}
	return ownError{err}
}

// pickleFaults rewrites the unpickler's messages that name its Go types,
// by prefix.
var pickleFaults = []struct{ prefix, msg string }{
	{"cannot instantiate", "OBJ of a value that is not a class"},
	{"OrderedDictClass.Call", "collections.OrderedDict called with arguments"},
	{"OrderedDict.PyDictSet", "BUILD of an OrderedDict with an attribute name that is not a str"},
	{"ObjectClass.PyNew", "object.__new__ called with bad arguments"},
	{"Reconstructor", "copyreg._reconstructor called with bad arguments"},
}

// goWords rewrites the Go type names in the unpickler's other messages.
var goWords = strings.NewReplacer(
	"*Tuple", "a tuple",
	"a PyNewable object", "a class",
	"a Callable object", "a callable",
	"DictSetter", "a dict",
	"ListAppender", "a list",
	"requires List", "requires a list",
	"SetAdder", "a set",
	"a PyDictSettable instance", "an object with attributes",
	"a PyAttrSettable instance", "an object with attributes",
)

// pickleFault turns an error of the unpickler into a message without Go
// internals: the unpickler names its Go types and appends Go dumps of
// values, mostly after a colon.
func pickleFault(err error) string {
	msg := err.Error()
	for _, f := range pickleFaults {
		if strings.HasPrefix(msg, f.prefix) {
			return f.msg
		}
	}
	if i := strings.Index(msg, ": "); i >= 0 {
		msg = msg[:i]
	}
	switch msg {
	case "EOF", "unexpected EOF":
		return "truncated pickle"
	}
	msg = goWords.Replace(msg)
	if i := strings.IndexAny(msg, "&{[%"); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	return msg
}

// ctxReader gives the unpickler its input and stops it when ctx is done:
// the unpickler reads every opcode and argument through it.
type ctxReader struct {
	ctx context.Context
	r   *bytes.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (c *ctxReader) ReadByte() (byte, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadByte()
}
