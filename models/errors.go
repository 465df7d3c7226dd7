package models

import "fmt"

// ShapeError reports a tensor in a weights file whose shape is not the one
// the network expects, e.g. weights of another network size or of a model
// built for another image size. Callers tell it apart with errors.As.
type ShapeError struct {
	// File is the weights file (or another description of the source).
	File string
	// Key is the state-dict key of the tensor; empty for a file that holds
	// a single tensor (mu.pt, sigma.pt).
	Key string
	// Want is the shape the network expects and Got the shape in File.
	Want, Got []int64
}

func (e *ShapeError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: expected shape %v, found %v", e.File, e.Want, e.Got)
	}
	return fmt.Sprintf("%s: key %q: expected shape %v, found %v", e.File, e.Key, e.Want, e.Got)
}

// Spatial reports whether the shapes differ only past the first two
// dimensions: the kernel of a convolution, which for the autoencoder's last
// encoder layer depends on the image size the model was built for.
func (e *ShapeError) Spatial() bool {
	if len(e.Want) != len(e.Got) || len(e.Want) < 3 {
		return false
	}
	for i := 0; i < 2; i++ {
		if e.Want[i] != e.Got[i] {
			return false
		}
	}
	return true
}
