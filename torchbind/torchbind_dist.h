/*
 * torchbind_dist.h: the plain C API of the shim's distributed part
 * (torchbind/csrc/dist.cc): libtorch's c10d stores and process groups.
 * Same conventions as torchbind.h; in addition every fallible function
 * reports through *kind what went wrong (one of TB_DIST_*), so that callers
 * can tell a timeout or a lost peer from other failures.
 */
#ifndef PUAD_TORCHBIND_DIST_H
#define PUAD_TORCHBIND_DIST_H

#include "torchbind.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_store_s* tb_store;
typedef struct tb_group_s* tb_group;

/* Kinds of failure. */
enum { TB_DIST_OTHER = 1, TB_DIST_TIMEOUT = 2, TB_DIST_PEER = 3, TB_DIST_UNAVAILABLE = 4 };

/* Backends. */
enum { TB_DIST_GLOO = 0, TB_DIST_NCCL = 1 };

char* tb_tcpstore_new(const char* host, int port, int world_size, int is_server, int64_t timeout_ms, int* kind,
                      tb_store* out);
char* tb_filestore_new(const char* path, int world_size, int* kind, tb_store* out);
void tb_store_free(tb_store s);

/* Creates the index-th process group on the store as torch.distributed does
 * (keys under "default_pg/<index>/", then the store-based barrier and the
 * group's sequence number), so that PyTorch ranks can join the same group. */
char* tb_group_new(tb_store s, int backend, int index, int rank, int world_size, int64_t timeout_ms, int* kind,
                   tb_group* out);
void tb_group_free(tb_group g);
/* In place, on one dense tensor (contiguous or not). */
char* tb_group_allreduce_sum(tb_group g, tb_tensor t, int* kind);
char* tb_group_broadcast(tb_group g, tb_tensor t, int root, int* kind);
char* tb_group_barrier(tb_group g, int* kind);

#ifdef __cplusplus
}
#endif

#endif
