// Neural-network functions, autograd and the Adam update.
#include <ATen/CPUGeneratorImpl.h>
#include <cmath>

#include "common.h"

using tb::T;
using tb::Wrap;

extern "C" {

char* tb_conv2d(tb_tensor x, tb_tensor w, tb_tensor b, const int64_t* stride, const int64_t* padding,
                const int64_t* dilation, int64_t groups, tb_tensor* out) {
  TB_TRY
  *out = Wrap(at::conv2d(T(x), T(w), tb::Opt(b), tb::Dims(stride, 2), tb::Dims(padding, 2),
                         tb::Dims(dilation, 2), groups));
  TB_CATCH
}

char* tb_avg_pool2d(tb_tensor x, const int64_t* kernel, const int64_t* stride, const int64_t* padding,
                    int ceil_mode, int count_include_pad, tb_tensor* out) {
  TB_TRY
  *out = Wrap(at::avg_pool2d(T(x), tb::Dims(kernel, 2), tb::Dims(stride, 2), tb::Dims(padding, 2), ceil_mode != 0,
                             count_include_pad != 0));
  TB_CATCH
}

char* tb_max_pool2d(tb_tensor x, const int64_t* kernel, const int64_t* stride, const int64_t* padding,
                    const int64_t* dilation, int ceil_mode, tb_tensor* out) {
  TB_TRY
  *out = Wrap(at::max_pool2d(T(x), tb::Dims(kernel, 2), tb::Dims(stride, 2), tb::Dims(padding, 2),
                             tb::Dims(dilation, 2), ceil_mode != 0));
  TB_CATCH
}

char* tb_batch_norm(tb_tensor x, tb_tensor w, tb_tensor b, tb_tensor running_mean, tb_tensor running_var,
                    int training, double momentum, double eps, tb_tensor* out) {
  TB_TRY
  *out = Wrap(at::batch_norm(T(x), tb::Opt(w), tb::Opt(b), tb::Opt(running_mean), tb::Opt(running_var),
                             training != 0, momentum, eps, /*cudnn_enabled=*/true));
  TB_CATCH
}

char* tb_upsample_bilinear(tb_tensor x, int64_t out_h, int64_t out_w, int align_corners, tb_tensor* out) {
  TB_TRY
  // F.interpolate(x, size=(h, w), mode="bilinear") with no scale factor passes no scales.
  std::vector<int64_t> size{out_h, out_w};
  *out = Wrap(at::upsample_bilinear2d(T(x), size, align_corners != 0, c10::nullopt, c10::nullopt));
  TB_CATCH
}

char* tb_adaptive_avg_pool1d(tb_tensor x, int64_t out_size, tb_tensor* out) {
  TB_TRY
  std::vector<int64_t> size{out_size};
  *out = Wrap(at::adaptive_avg_pool1d(T(x), size));
  TB_CATCH
}

char* tb_adaptive_avg_pool2d(tb_tensor x, int64_t out_h, int64_t out_w, tb_tensor* out) {
  TB_TRY
  std::vector<int64_t> size{out_h, out_w};
  *out = Wrap(at::adaptive_avg_pool2d(T(x), size));
  TB_CATCH
}

char* tb_dropout(tb_tensor x, double p, int training, tb_generator g, tb_tensor* out) {
  TB_TRY
  const at::Tensor& in = T(x);
  if (p < 0.0 || p > 1.0) throw std::invalid_argument("dropout probability must be in [0, 1]");
  if (!training || p == 0.0) {
    *out = Wrap(in);
    return nullptr;
  }
  if (p == 1.0) {
    *out = Wrap(in * at::zeros({}, in.options()));
    return nullptr;
  }
  // As ATen's dropout on CPU: a Bernoulli(1-p) mask divided by 1-p, then multiplied.
  c10::optional<at::Generator> gen;
  if (g != nullptr) gen = g->gen;
  at::Tensor noise = at::empty_like(in, at::MemoryFormat::Contiguous).bernoulli_(1.0 - p, gen);
  noise.div_(1.0 - p);
  *out = Wrap(in * noise);
  TB_CATCH
}

char* tb_mse_loss(tb_tensor a, tb_tensor b, int reduction, tb_tensor* out) {
  TB_TRY
  int64_t red = reduction == 0 ? at::Reduction::None : reduction == 2 ? at::Reduction::Sum : at::Reduction::Mean;
  *out = Wrap(at::mse_loss(T(a), T(b), red));
  TB_CATCH
}

char* tb_set_requires_grad(tb_tensor t, int requires_grad) {
  TB_TRY
  // requires_grad_ (not set_requires_grad) refuses to clear the flag of a
  // non-leaf, with PyTorch's message, instead of silently doing nothing.
  T(t).requires_grad_(requires_grad != 0);
  TB_CATCH
}

char* tb_backward(tb_tensor t) {
  TB_TRY
  T(t).backward();
  TB_CATCH
}

char* tb_grad(tb_tensor t, tb_tensor* out) {
  TB_TRY
  const at::Tensor& g = T(t).grad();
  *out = g.defined() ? Wrap(g) : nullptr;
  TB_CATCH
}

char* tb_zero_grad(tb_tensor t) {
  TB_TRY
  // optimizer.zero_grad(set_to_none=False) in torch 1.13: detach and zero in place.
  at::Tensor& g = T(t).mutable_grad();
  if (g.defined()) {
    if (g.grad_fn()) {
      g = g.detach();
    } else {
      g.requires_grad_(false);
    }
    g.zero_();
  }
  TB_CATCH
}

char* tb_adam_step(tb_tensor param, tb_tensor exp_avg, tb_tensor exp_avg_sq, int64_t step, double lr,
                   double beta1, double beta2, double eps, double weight_decay) {
  TB_TRY
  c10::AutoGradMode no_grad(false);
  at::Tensor& p = T(param);
  at::Tensor grad = p.grad();
  if (!grad.defined()) return nullptr;  // parameters without gradients are skipped, as in PyTorch
  at::Tensor& m = T(exp_avg);
  at::Tensor& v = T(exp_avg_sq);
  if (weight_decay != 0.0) grad = grad.add(p, weight_decay);
  m.mul_(beta1).add_(grad, 1.0 - beta1);
  v.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
  double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  double step_size = lr / bias_correction1;
  at::Tensor denom = (v.sqrt() / std::sqrt(bias_correction2)).add_(eps);
  p.addcdiv_(m, denom, -step_size);
  TB_CATCH
}

}  // extern "C"
