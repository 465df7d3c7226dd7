/*
 * torchbind.h: the plain C API of the libtorch shim (torchbind/csrc).
 *
 * Conventions:
 *   - Every function that can fail returns a heap-allocated error message
 *     (free it with tb_free_string) or NULL on success; results come back
 *     through out-parameters. The message belongs to the call that failed:
 *     there is no thread-local "last error", because a goroutine may move to
 *     another OS thread between two cgo calls.
 *   - No C++ exception crosses this boundary.
 *   - A tb_tensor is an owned handle: release it with tb_tensor_free.
 *     Functions never take ownership of their tensor arguments.
 *   - A NULL tb_tensor argument where a tensor is optional means "none".
 */
#ifndef PUAD_TORCHBIND_H
#define PUAD_TORCHBIND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_tensor_s* tb_tensor;
typedef struct tb_generator_s* tb_generator;
typedef struct tb_guard_s* tb_guard;

/* Data types (stable numbering shared with the Go side). */
enum {
  TB_FLOAT32 = 0,
  TB_FLOAT64 = 1,
  TB_FLOAT16 = 2,
  TB_INT64 = 3,
  TB_UINT8 = 4,
  TB_BOOL = 5,
  TB_INT32 = 6,
  TB_BFLOAT16 = 7
};

/* Device types. */
enum { TB_CPU = 0, TB_CUDA = 1 };

#define TB_MAX_DIMS 16

/* ---- runtime ---- */
void tb_free_string(char* s);
const char* tb_torch_version(void);
int tb_cuda_available(void);
int tb_cuda_device_count(void);
void tb_set_num_threads(int n);
int tb_get_num_threads(void);
/* libtorch's default intra-op thread count (what PyTorch uses in Python). */
int tb_default_num_threads(void);
/* Sets the grad mode of the calling OS thread, returns the previous one. */
int tb_set_grad_enabled(int enabled);
int tb_is_grad_enabled(void);
/* Enters inference mode on the calling OS thread; tb_guard_exit on the same thread. */
char* tb_inference_mode_enter(tb_guard* out);
void tb_guard_exit(tb_guard g);

/* ---- generators ---- */
char* tb_generator_new(uint64_t seed, int device_type, int device_index, tb_generator* out);
void tb_generator_free(tb_generator g);
/* State as a uint8 CPU tensor (for checkpoints). */
char* tb_generator_get_state(tb_generator g, tb_tensor* out);
char* tb_generator_set_state(tb_generator g, tb_tensor state);

/* ---- tensors: lifetime, metadata, data ---- */
void tb_tensor_free(tb_tensor t);
/* sizes must hold TB_MAX_DIMS entries. */
char* tb_tensor_info(tb_tensor t, int* dtype, int* ndim, int64_t* sizes, int* device_type,
                     int* device_index, int* requires_grad);
/* Copies a strided view of data (offset in elements) into a new contiguous CPU tensor. */
char* tb_from_blob(const void* data, int dtype, const int64_t* sizes, const int64_t* strides, int ndim,
                   int64_t offset, tb_tensor* out);
/* Copies the tensor's values, made contiguous and moved to CPU, into dst (nbytes must match). */
char* tb_to_blob(tb_tensor t, void* dst, int64_t nbytes);
char* tb_item(tb_tensor t, double* out);
char* tb_to(tb_tensor t, int device_type, int device_index, int dtype, tb_tensor* out);
char* tb_shallow_clone(tb_tensor t, tb_tensor* out);

/* ---- creation ---- */
char* tb_full(const int64_t* sizes, int ndim, double value, int dtype, int device_type, int device_index,
              tb_tensor* out);
char* tb_arange(double start, double end, double step, int dtype, int device_type, int device_index,
                tb_tensor* out);
/* kind: 0 rand (uniform [0,1)), 1 randn (normal). */
char* tb_random(int kind, tb_generator g, const int64_t* sizes, int ndim, int dtype, int device_type,
                int device_index, tb_tensor* out);
/* A new tensor filled in place from g: kind 0 uniform_(a, b), 1 normal_(a, b) (mean a, std b). */
char* tb_random_fill(int kind, tb_generator g, const int64_t* sizes, int ndim, int dtype, int device_type,
                     int device_index, double a, double b, tb_tensor* out);
/* torch.empty((), dtype=torch.int64).random_(generator=g).item() (CPU). */
char* tb_random_int64(tb_generator g, int64_t* out);
char* tb_randint(tb_generator g, int64_t low, int64_t high, const int64_t* sizes, int ndim, int device_type,
                 int device_index, tb_tensor* out);
char* tb_randperm(tb_generator g, int64_t n, int device_type, int device_index, tb_tensor* out);
/* Bernoulli(p) samples shaped like t, in t's dtype and device. */
char* tb_bernoulli(tb_generator g, tb_tensor like, double p, tb_tensor* out);

/* ---- elementwise ---- */
enum {
  TB_OP_NEG = 0, TB_OP_ABS, TB_OP_SQRT, TB_OP_EXP, TB_OP_LOG, TB_OP_RELU, TB_OP_SIGMOID, TB_OP_TANH,
  TB_OP_CONTIGUOUS, TB_OP_CLONE, TB_OP_DETACH, TB_OP_FLOOR, TB_OP_CEIL, TB_OP_ISNAN, TB_OP_SQUARE,
  TB_OP_FLATTEN
};
char* tb_unary(int op, tb_tensor a, tb_tensor* out);
enum {
  TB_OP_ADD = 0, TB_OP_SUB, TB_OP_MUL, TB_OP_DIV, TB_OP_POW, TB_OP_GT, TB_OP_GE, TB_OP_LT, TB_OP_LE,
  TB_OP_EQ, TB_OP_NE, TB_OP_MAXIMUM, TB_OP_MINIMUM, TB_OP_RSUB, TB_OP_MATMUL
};
char* tb_binary(int op, tb_tensor a, tb_tensor b, tb_tensor* out);
char* tb_binary_scalar(int op, tb_tensor a, double s, tb_tensor* out);
char* tb_clamp(tb_tensor a, double lo, double hi, int has_lo, int has_hi, tb_tensor* out);
char* tb_where(tb_tensor cond, tb_tensor a, tb_tensor b, tb_tensor* out);
char* tb_masked_select(tb_tensor a, tb_tensor mask, tb_tensor* out);
/* In place: dst.copy_(src). */
char* tb_copy_(tb_tensor dst, tb_tensor src);

/* ---- reductions (ndims == 0 reduces over all elements) ---- */
enum {
  TB_RED_SUM = 0, TB_RED_MEAN, TB_RED_STD, TB_RED_VAR, TB_RED_MAX, TB_RED_MIN, TB_RED_ARGMAX, TB_RED_ARGMIN,
  TB_RED_ANY, TB_RED_ALL
};
char* tb_reduce(int op, tb_tensor a, const int64_t* dims, int ndims, int keepdim, int unbiased, tb_tensor* out);
/* Linear-interpolation quantile. has_dim == 0: over all elements (exact at any size). */
char* tb_quantile(tb_tensor a, double q, int64_t dim, int has_dim, int keepdim, tb_tensor* out);
char* tb_kthvalue(tb_tensor a, int64_t k, int64_t dim, int keepdim, tb_tensor* values, tb_tensor* indices);
char* tb_sort(tb_tensor a, int64_t dim, int descending, tb_tensor* values, tb_tensor* indices);

/* ---- shape and indexing ---- */
char* tb_reshape(tb_tensor a, const int64_t* sizes, int ndim, tb_tensor* out);
char* tb_view(tb_tensor a, const int64_t* sizes, int ndim, tb_tensor* out);
char* tb_permute(tb_tensor a, const int64_t* dims, int ndim, tb_tensor* out);
char* tb_transpose(tb_tensor a, int64_t d0, int64_t d1, tb_tensor* out);
/* has_dim == 0 squeezes every dimension of size one. */
char* tb_squeeze(tb_tensor a, int64_t dim, int has_dim, tb_tensor* out);
char* tb_unsqueeze(tb_tensor a, int64_t dim, tb_tensor* out);
char* tb_narrow(tb_tensor a, int64_t dim, int64_t start, int64_t length, tb_tensor* out);
char* tb_index_select(tb_tensor a, int64_t dim, tb_tensor index, tb_tensor* out);
char* tb_gather(tb_tensor a, int64_t dim, tb_tensor index, tb_tensor* out);
char* tb_cat(const tb_tensor* ts, int n, int64_t dim, tb_tensor* out);
char* tb_stack(const tb_tensor* ts, int n, int64_t dim, tb_tensor* out);
char* tb_expand(tb_tensor a, const int64_t* sizes, int ndim, tb_tensor* out);

/* ---- neural-network functions ---- */
char* tb_conv2d(tb_tensor x, tb_tensor w, tb_tensor b, const int64_t* stride, const int64_t* padding,
                const int64_t* dilation, int64_t groups, tb_tensor* out);
char* tb_avg_pool2d(tb_tensor x, const int64_t* kernel, const int64_t* stride, const int64_t* padding,
                    int ceil_mode, int count_include_pad, tb_tensor* out);
char* tb_max_pool2d(tb_tensor x, const int64_t* kernel, const int64_t* stride, const int64_t* padding,
                    const int64_t* dilation, int ceil_mode, tb_tensor* out);
/* Running statistics are updated in place when training. */
char* tb_batch_norm(tb_tensor x, tb_tensor w, tb_tensor b, tb_tensor running_mean, tb_tensor running_var,
                    int training, double momentum, double eps, tb_tensor* out);
char* tb_upsample_bilinear(tb_tensor x, int64_t out_h, int64_t out_w, int align_corners, tb_tensor* out);
char* tb_adaptive_avg_pool1d(tb_tensor x, int64_t out_size, tb_tensor* out);
char* tb_adaptive_avg_pool2d(tb_tensor x, int64_t out_h, int64_t out_w, tb_tensor* out);
/* Inverted dropout with an explicit generator (NULL: the default generator). */
char* tb_dropout(tb_tensor x, double p, int training, tb_generator g, tb_tensor* out);
/* reduction: 0 none, 1 mean, 2 sum. */
char* tb_mse_loss(tb_tensor a, tb_tensor b, int reduction, tb_tensor* out);

/* ---- autograd ---- */
char* tb_set_requires_grad(tb_tensor t, int requires_grad);
char* tb_backward(tb_tensor t);
/* *out is NULL when the tensor has no gradient. */
char* tb_grad(tb_tensor t, tb_tensor* out);
char* tb_zero_grad(tb_tensor t);

/* ---- optimisation ---- */
/* One Adam step for one parameter, as torch.optim.Adam (foreach=False, amsgrad=False) does it;
   step is the step number after incrementing (1 for the first step). */
char* tb_adam_step(tb_tensor param, tb_tensor exp_avg, tb_tensor exp_avg_sq, int64_t step, double lr,
                   double beta1, double beta2, double eps, double weight_decay);

/* ---- precision and memory format ---- */
enum { TB_CONTIGUOUS_FORMAT = 0, TB_CHANNELS_LAST = 1 };
/* t.contiguous(memory_format): a copy in the layout unless t already has it (part of the autograd graph). */
char* tb_to_memory_format(tb_tensor t, int format, tb_tensor* out);
/* *out = 1 when t is 4-D and dense in channels-last order. */
char* tb_is_channels_last(tb_tensor t, int* out);
/* Process-wide CUDA switches: cuDNN autotuning and TF32 in cuDNN convolutions and cuBLAS matmuls. */
char* tb_set_cuda_math(int cudnn_benchmark, int tf32);
char* tb_get_cuda_math(int* cudnn_benchmark, int* tf32);

#ifdef __cplusplus
}
#endif

#endif /* PUAD_TORCHBIND_H */
