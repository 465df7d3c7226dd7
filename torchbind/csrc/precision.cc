// Memory formats and the CUDA math switches (cuDNN autotuning, TF32).
#include <ATen/Context.h>

#include "common.h"

using tb::T;
using tb::Wrap;

extern "C" {

char* tb_to_memory_format(tb_tensor t, int format, tb_tensor* out) {
  TB_TRY
  at::MemoryFormat mf;
  switch (format) {
    case TB_CONTIGUOUS_FORMAT: mf = at::MemoryFormat::Contiguous; break;
    case TB_CHANNELS_LAST: mf = at::MemoryFormat::ChannelsLast; break;
    default: throw std::invalid_argument("unknown memory format " + std::to_string(format));
  }
  *out = Wrap(T(t).contiguous(mf));
  TB_CATCH
}

char* tb_is_channels_last(tb_tensor t, int* out) {
  TB_TRY
  *out = T(t).is_contiguous(at::MemoryFormat::ChannelsLast) && T(t).dim() == 4 ? 1 : 0;
  TB_CATCH
}

char* tb_set_cuda_math(int cudnn_benchmark, int tf32) {
  TB_TRY
  auto& ctx = at::globalContext();
  ctx.setBenchmarkCuDNN(cudnn_benchmark != 0);
  ctx.setAllowTF32CuDNN(tf32 != 0);
  ctx.setAllowTF32CuBLAS(tf32 != 0);
  TB_CATCH
}

char* tb_get_cuda_math(int* cudnn_benchmark, int* tf32) {
  TB_TRY
  auto& ctx = at::globalContext();
  *cudnn_benchmark = ctx.benchmarkCuDNN() ? 1 : 0;
  *tf32 = ctx.allowTF32CuDNN() && ctx.allowTF32CuBLAS() ? 1 : 0;
  TB_CATCH
}

}  // extern "C"
