// Package ptfile reads and writes PyTorch .pt files (the files written by
// torch.save and read by torch.load) in pure Go, without libtorch.
//
// Reading understands both the zip format that torch.save has written by
// default since PyTorch 1.6 and the older "legacy" stream format
// (torch.save(..., _use_new_zipfile_serialization=False)). Only the pieces of
// the pickle protocol that PyTorch uses for tensors, parameters, state dicts
// and plain containers are accepted; a pickle that refers to any other Python
// class (for example a whole nn.Module saved with torch.save(model, ...)) is
// rejected with an error that names the class.
//
// A loaded tensor is a view into a storage, exactly as in PyTorch: the raw
// little-endian bytes of the whole storage, plus a dtype, a shape, strides
// and a storage offset (both counted in elements). Tensors that viewed the
// same storage when they were saved share the same Storage byte slice after
// loading. A consumer that builds native tensors can wrap Storage with the
// given sizes, strides and offset and then make the result contiguous, or
// call Tensor.Contiguous to get a packed copy on the Go side.
//
// Loading reads the whole file into memory and does not copy storages out
// of it: each Storage is a slice of that buffer (capacity limited to its
// length), so a loaded state dict costs about the size of the file.
//
// A file is untrusted input, so loading bounds its cost by the file's size:
// each pickle opcode does bounded work (ints and numbers of at most 64
// bytes, lengths checked against the bytes that are there, frames not
// nested, marks nested at most 1000 deep), the records of a zip archive may
// not overlap, and a record compressed by another zip tool (torch.save
// stores them uncompressed) may expand at most 16 times. The tensors of a
// file, made contiguous, may take at most 1 GiB more than the file (tensors
// with zero strides can claim far more elements than their storage holds);
// LoadOptions changes that bound. LoadContext and the LoadOptions methods
// stop when their context is cancelled.
//
// Errors tell their kind apart: a *FormatError for content that cannot be
// loaded (errors.Is(err, ErrNotPTFile) when it is not a PyTorch file at
// all), a *LimitError (errors.Is(err, ErrTooLarge)) for a file beyond a
// bound, the context's error when loading was interrupted, and the
// operating system's error when the file cannot be read. Messages show the
// Python values and types of the pickle, never Go ones.
//
// Writing produces the zip format that torch.save writes, with a pickle that
// torch.load accepts both with and without weights_only=True.
package ptfile
