// Package dist binds libtorch's c10d, the distributed backend of PyTorch
// (the one torchrun and DistributedDataParallel use): key-value stores
// (TCPStore, FileStore) through which processes find each other, and process
// groups whose collectives (AllReduce, Broadcast, Barrier) run over Gloo on
// the CPU, or over NCCL when libtorch was built with CUDA and NCCL.
//
// A group is laid out in its store exactly as torch.distributed lays out its
// default group (keys under "default_pg/0/", the store-based barrier, the
// sequence number), so Go ranks and PyTorch ranks started by torchrun, or by
// torch.distributed.init_process_group("gloo", ...), form one group and
// reduce together. Gloo connects the ranks through the network interfaces
// named in $GLOO_SOCKET_IFNAME (comma-separated), else through the address
// the host name resolves to, as PyTorch does.
//
// # Ownership
//
// Every *Store and *Group owns a C++ object and must be closed; Init's group
// also owns its store. As in package torchbind, a finalizer only counts
// leaks: an unclosed store or group that reaches the collector is freed and
// counted in Leaked.
//
// # Errors
//
// Failures are *Error values. A timeout (a peer that never arrives, a
// collective whose peer stops answering) matches ErrTimeout with errors.Is,
// a lost connection (a peer that exited) ErrPeerFailed, and a backend this
// libtorch lacks ErrBackendUnavailable; the message keeps c10d's own text.
package dist
