// Shared helpers of the shim: error conversion, handle casts, thread set-up.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../torchbind.h"

// A generator handle owns a libtorch generator.
struct tb_generator_s {
  at::Generator gen;
};

namespace tb {

// A tb_tensor is a heap-allocated at::Tensor.
inline at::Tensor& T(tb_tensor t) {
  if (t == nullptr) throw std::invalid_argument("nil tensor");
  return *reinterpret_cast<at::Tensor*>(t);
}
inline c10::optional<at::Tensor> Opt(tb_tensor t) {
  if (t == nullptr) return c10::nullopt;
  return *reinterpret_cast<at::Tensor*>(t);
}
inline tb_tensor Wrap(at::Tensor t) { return reinterpret_cast<tb_tensor>(new at::Tensor(std::move(t))); }

char* Error(const std::string& msg);

at::ScalarType ScalarType(int dtype);
int DType(at::ScalarType st);
at::Device Device(int device_type, int device_index);
inline at::IntArrayRef Dims(const int64_t* p, int n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }

// Applies the process-wide intra-op thread count to the calling OS thread when it
// has changed since this thread last saw it. Called on entry to every shim function,
// because cgo calls land on whichever OS thread the goroutine runs on.
void ThreadInit();

}  // namespace tb

// TB_TRY/TB_CATCH wrap every fallible entry point: no exception escapes the shim.
#define TB_TRY \
  try {        \
    tb::ThreadInit();
#define TB_CATCH                                                                    \
  }                                                                                 \
  catch (const c10::Error& e) {                                                     \
    return tb::Error(e.what_without_backtrace());                                   \
  }                                                                                 \
  catch (const std::exception& e) {                                                 \
    return tb::Error(e.what());                                                     \
  }                                                                                 \
  catch (...) {                                                                     \
    return tb::Error("unknown C++ exception");                                      \
  }                                                                                 \
  return nullptr;
