// Runtime state, generators, tensor lifetime and data transfer.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/api/include/torch/version.h>

#include <atomic>

#include "common.h"

namespace tb {

namespace {
std::atomic<int> g_threads{0};     // requested intra-op threads, 0 = libtorch's default
std::atomic<int> g_generation{0};  // bumped on every change
}  // namespace

char* Error(const std::string& msg) {
  char* s = static_cast<char*>(std::malloc(msg.size() + 1));
  if (s == nullptr) return nullptr;
  std::memcpy(s, msg.c_str(), msg.size() + 1);
  return s;
}

at::ScalarType ScalarType(int dtype) {
  switch (dtype) {
    case TB_FLOAT32: return at::kFloat;
    case TB_FLOAT64: return at::kDouble;
    case TB_FLOAT16: return at::kHalf;
    case TB_INT64: return at::kLong;
    case TB_UINT8: return at::kByte;
    case TB_BOOL: return at::kBool;
    case TB_INT32: return at::kInt;
    case TB_BFLOAT16: return at::kBFloat16;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
}

int DType(at::ScalarType st) {
  switch (st) {
    case at::kFloat: return TB_FLOAT32;
    case at::kDouble: return TB_FLOAT64;
    case at::kHalf: return TB_FLOAT16;
    case at::kLong: return TB_INT64;
    case at::kByte: return TB_UINT8;
    case at::kBool: return TB_BOOL;
    case at::kInt: return TB_INT32;
    case at::kBFloat16: return TB_BFLOAT16;
    default: throw std::invalid_argument(std::string("unsupported dtype ") + c10::toString(st));
  }
}

at::Device Device(int device_type, int device_index) {
  if (device_type == TB_CPU) return at::Device(at::kCPU);
  if (device_type == TB_CUDA) {
    if (!at::hasCUDA()) throw std::runtime_error("CUDA is not available in this libtorch or on this machine");
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_index));
  }
  throw std::invalid_argument("unknown device type " + std::to_string(device_type));
}

void ThreadInit() {
  thread_local int seen = 0;
  int gen = g_generation.load(std::memory_order_relaxed);
  if (seen != gen) {
    seen = gen;
    int n = g_threads.load();
    // set_num_threads also resizes libtorch's thread pools: skip it when the
    // thread already has the count.
    if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
  }
}

}  // namespace tb

using tb::T;
using tb::Wrap;

extern "C" {

void tb_free_string(char* s) { std::free(s); }

const char* tb_torch_version(void) { return TORCH_VERSION; }

int tb_cuda_available(void) {
  try {
    return at::hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0;
  } catch (...) {
    return 0;
  }
}

int tb_cuda_device_count(void) {
  try {
    return at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0;
  } catch (...) {
    return 0;
  }
}

void tb_set_num_threads(int n) {
  if (n <= 0) return;
  tb::g_threads.store(n);
  tb::g_generation.fetch_add(1);
  try {
    at::set_num_threads(n);
  } catch (...) {
  }
}

int tb_get_num_threads(void) {
  try {
    tb::ThreadInit();
    return at::get_num_threads();
  } catch (...) {
    return 0;
  }
}

int tb_default_num_threads(void) {
  try {
    return at::intraop_default_num_threads();
  } catch (...) {
    return 1;
  }
}

int tb_set_grad_enabled(int enabled) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(enabled != 0);
  return prev ? 1 : 0;
}

int tb_is_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }

struct tb_guard_s {
  c10::InferenceMode mode;
};

char* tb_inference_mode_enter(tb_guard* out) {
  TB_TRY
  *out = new tb_guard_s();
  TB_CATCH
}

void tb_guard_exit(tb_guard g) { delete g; }

char* tb_generator_new(uint64_t seed, int device_type, int device_index, tb_generator* out) {
  TB_TRY
  at::Generator g;
  if (device_type == TB_CPU) {
    g = at::make_generator<at::CPUGeneratorImpl>(seed);
  } else {
    at::Device dev = tb::Device(device_type, device_index);
    // The device's default generator, cloned (an API present in libtorch 1.13 and 2.x).
    g = at::globalContext().defaultGenerator(dev).clone();
    g.set_current_seed(seed);
  }
  *out = new tb_generator_s{g};
  TB_CATCH
}

void tb_generator_free(tb_generator g) { delete g; }

char* tb_generator_get_state(tb_generator g, tb_tensor* out) {
  TB_TRY
  std::lock_guard<std::mutex> lock(g->gen.mutex());
  *out = Wrap(g->gen.get_state());
  TB_CATCH
}

char* tb_generator_set_state(tb_generator g, tb_tensor state) {
  TB_TRY
  std::lock_guard<std::mutex> lock(g->gen.mutex());
  g->gen.set_state(T(state));
  TB_CATCH
}

void tb_tensor_free(tb_tensor t) { delete reinterpret_cast<at::Tensor*>(t); }

char* tb_tensor_info(tb_tensor t, int* dtype, int* ndim, int64_t* sizes, int* device_type, int* device_index,
                     int* requires_grad) {
  TB_TRY
  const at::Tensor& x = T(t);
  if (!x.defined()) throw std::invalid_argument("undefined tensor");
  if (x.dim() > TB_MAX_DIMS) throw std::invalid_argument("tensor has more than 16 dimensions");
  *dtype = tb::DType(x.scalar_type());
  *ndim = static_cast<int>(x.dim());
  for (int64_t i = 0; i < x.dim(); i++) sizes[i] = x.size(i);
  *device_type = x.is_cuda() ? TB_CUDA : TB_CPU;
  // The CPU is device index 0 on the Go side (torchbind.CPU), not -1.
  *device_index = x.is_cuda() ? x.device().index() : 0;
  *requires_grad = x.requires_grad() ? 1 : 0;
  TB_CATCH
}

char* tb_from_blob(const void* data, int dtype, const int64_t* sizes, const int64_t* strides, int ndim,
                   int64_t offset, tb_tensor* out) {
  TB_TRY
  auto opts = at::TensorOptions().dtype(tb::ScalarType(dtype));
  auto dst = at::empty(tb::Dims(sizes, ndim), opts);
  if (dst.numel() > 0) {
    const char* base = static_cast<const char*>(data) + offset * static_cast<int64_t>(dst.element_size());
    auto view = at::from_blob(const_cast<char*>(base), tb::Dims(sizes, ndim), tb::Dims(strides, ndim), opts);
    dst.copy_(view);
  }
  *out = Wrap(dst);
  TB_CATCH
}

char* tb_to_blob(tb_tensor t, void* dst, int64_t nbytes) {
  TB_TRY
  at::Tensor c = T(t).detach().to(at::kCPU).contiguous();
  int64_t have = static_cast<int64_t>(c.nbytes());
  if (have != nbytes) {
    throw std::invalid_argument("buffer of " + std::to_string(nbytes) + " bytes for a tensor of " +
                                std::to_string(have) + " bytes");
  }
  if (have > 0) std::memcpy(dst, c.data_ptr(), static_cast<size_t>(have));
  TB_CATCH
}

char* tb_item(tb_tensor t, double* out) {
  TB_TRY
  *out = T(t).item<double>();
  TB_CATCH
}

char* tb_to(tb_tensor t, int device_type, int device_index, int dtype, tb_tensor* out) {
  TB_TRY
  const at::Tensor& x = T(t);
  at::Device dev = device_type < 0 ? x.device() : tb::Device(device_type, device_index);
  at::ScalarType st = dtype < 0 ? x.scalar_type() : tb::ScalarType(dtype);
  *out = Wrap(x.to(dev, st));
  TB_CATCH
}

char* tb_shallow_clone(tb_tensor t, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(t));
  TB_CATCH
}

char* tb_full(const int64_t* sizes, int ndim, double value, int dtype, int device_type, int device_index,
              tb_tensor* out) {
  TB_TRY
  auto opts = at::TensorOptions().dtype(tb::ScalarType(dtype)).device(tb::Device(device_type, device_index));
  *out = Wrap(at::full(tb::Dims(sizes, ndim), value, opts));
  TB_CATCH
}

char* tb_arange(double start, double end, double step, int dtype, int device_type, int device_index,
                tb_tensor* out) {
  TB_TRY
  auto opts = at::TensorOptions().dtype(tb::ScalarType(dtype)).device(tb::Device(device_type, device_index));
  *out = Wrap(at::arange(start, end, step, opts));
  TB_CATCH
}

static c10::optional<at::Generator> Gen(tb_generator g) {
  if (g == nullptr) return c10::nullopt;
  return g->gen;
}

char* tb_random(int kind, tb_generator g, const int64_t* sizes, int ndim, int dtype, int device_type,
                int device_index, tb_tensor* out) {
  TB_TRY
  auto opts = at::TensorOptions().dtype(tb::ScalarType(dtype)).device(tb::Device(device_type, device_index));
  if (kind == 0) {
    *out = Wrap(at::rand(tb::Dims(sizes, ndim), Gen(g), opts));
  } else {
    *out = Wrap(at::randn(tb::Dims(sizes, ndim), Gen(g), opts));
  }
  TB_CATCH
}

char* tb_random_fill(int kind, tb_generator g, const int64_t* sizes, int ndim, int dtype, int device_type,
                     int device_index, double a, double b, tb_tensor* out) {
  TB_TRY
  auto opts = at::TensorOptions().dtype(tb::ScalarType(dtype)).device(tb::Device(device_type, device_index));
  at::Tensor t = at::empty(tb::Dims(sizes, ndim), opts);
  if (kind == 0) {
    t.uniform_(a, b, Gen(g));
  } else {
    t.normal_(a, b, Gen(g));
  }
  *out = Wrap(t);
  TB_CATCH
}

char* tb_random_int64(tb_generator g, int64_t* out) {
  TB_TRY
  *out = at::empty({}, at::TensorOptions().dtype(at::kLong)).random_(Gen(g)).item<int64_t>();
  TB_CATCH
}

char* tb_randint(tb_generator g, int64_t low, int64_t high, const int64_t* sizes, int ndim, int device_type,
                 int device_index, tb_tensor* out) {
  TB_TRY
  auto opts = at::TensorOptions().dtype(at::kLong).device(tb::Device(device_type, device_index));
  *out = Wrap(at::randint(low, high, tb::Dims(sizes, ndim), Gen(g), opts));
  TB_CATCH
}

char* tb_randperm(tb_generator g, int64_t n, int device_type, int device_index, tb_tensor* out) {
  TB_TRY
  auto opts = at::TensorOptions().dtype(at::kLong).device(tb::Device(device_type, device_index));
  *out = Wrap(at::randperm(n, Gen(g), opts));
  TB_CATCH
}

char* tb_bernoulli(tb_generator g, tb_tensor like, double p, tb_tensor* out) {
  TB_TRY
  *out = Wrap(at::empty_like(T(like)).bernoulli_(p, Gen(g)));
  TB_CATCH
}

}  // extern "C"
