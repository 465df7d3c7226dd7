package torchbind

// Scope owns the tensors made in a region of code and frees them all at
// Close, except those handed out with Keep. It also keeps the first error, so
// a chain of operations can be written without checking each step:
//
//	s := torchbind.NewScope()
//	defer s.Close()
//	h := s.T(torchbind.Conv2d(x, w, b, opts))
//	h = s.T(torchbind.Relu(h))
//	if err := s.Err(); err != nil { ... }
//	return s.Keep(h), nil
//
// After an error every later operation receives a nil tensor and fails fast
// with an error of its own, which the scope ignores. A Scope is not safe for
// concurrent use.
type Scope struct {
	owned []*Tensor
	err   error
}

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// T tracks the result of an operation: it records err (the first one wins)
// and takes ownership of t.
func (s *Scope) T(t *Tensor, err error) *Tensor {
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		t.Close()
		return nil
	}
	if t != nil {
		s.owned = append(s.owned, t)
	}
	return t
}

// Own takes ownership of an existing tensor.
func (s *Scope) Own(t *Tensor) *Tensor {
	if t != nil {
		s.owned = append(s.owned, t)
	}
	return t
}

// Fail records an error that did not come from an operation.
func (s *Scope) Fail(err error) {
	if err != nil && s.err == nil {
		s.err = err
	}
}

// Err is the first error recorded.
func (s *Scope) Err() error { return s.err }

// Keep releases t from the scope, so it survives Close; the caller owns it.
func (s *Scope) Keep(t *Tensor) *Tensor {
	for i := len(s.owned) - 1; i >= 0; i-- {
		if s.owned[i] == t {
			s.owned = append(s.owned[:i], s.owned[i+1:]...)
			break
		}
	}
	return t
}

// Close frees every tensor the scope still owns.
func (s *Scope) Close() {
	for _, t := range s.owned {
		t.Close()
	}
	s.owned = nil
}
