// Elementwise operations, reductions, shape and indexing.
#include <cmath>
#include <limits>

#include "common.h"

using tb::T;
using tb::Wrap;

extern "C" {

char* tb_unary(int op, tb_tensor a, tb_tensor* out) {
  TB_TRY
  const at::Tensor& x = T(a);
  at::Tensor r;
  switch (op) {
    case TB_OP_NEG: r = x.neg(); break;
    case TB_OP_ABS: r = x.abs(); break;
    case TB_OP_SQRT: r = x.sqrt(); break;
    case TB_OP_EXP: r = x.exp(); break;
    case TB_OP_LOG: r = x.log(); break;
    case TB_OP_RELU: r = at::relu(x); break;
    case TB_OP_SIGMOID: r = x.sigmoid(); break;
    case TB_OP_TANH: r = x.tanh(); break;
    case TB_OP_CONTIGUOUS: r = x.contiguous(); break;
    case TB_OP_CLONE: r = x.clone(at::MemoryFormat::Contiguous); break;
    case TB_OP_DETACH: r = x.detach(); break;
    case TB_OP_FLOOR: r = x.floor(); break;
    case TB_OP_CEIL: r = x.ceil(); break;
    case TB_OP_ISNAN: r = x.isnan(); break;
    case TB_OP_SQUARE: r = x.square(); break;
    case TB_OP_FLATTEN: r = x.flatten(); break;
    default: throw std::invalid_argument("unknown unary op " + std::to_string(op));
  }
  *out = Wrap(r);
  TB_CATCH
}

static at::Tensor Binary(int op, const at::Tensor& x, const at::Tensor& y) {
  switch (op) {
    case TB_OP_ADD: return x.add(y);
    case TB_OP_SUB: return x.sub(y);
    case TB_OP_MUL: return x.mul(y);
    case TB_OP_DIV: return x.div(y);
    case TB_OP_POW: return x.pow(y);
    case TB_OP_GT: return x.gt(y);
    case TB_OP_GE: return x.ge(y);
    case TB_OP_LT: return x.lt(y);
    case TB_OP_LE: return x.le(y);
    case TB_OP_EQ: return x.eq(y);
    case TB_OP_NE: return x.ne(y);
    case TB_OP_MAXIMUM: return at::maximum(x, y);
    case TB_OP_MINIMUM: return at::minimum(x, y);
    case TB_OP_RSUB: return y.sub(x);
    case TB_OP_MATMUL: return at::matmul(x, y);
  }
  throw std::invalid_argument("unknown binary op " + std::to_string(op));
}

char* tb_binary(int op, tb_tensor a, tb_tensor b, tb_tensor* out) {
  TB_TRY
  *out = Wrap(Binary(op, T(a), T(b)));
  TB_CATCH
}

char* tb_binary_scalar(int op, tb_tensor a, double s, tb_tensor* out) {
  TB_TRY
  const at::Tensor& x = T(a);
  at::Tensor r;
  // Python scalars: a Python float combined with a tensor keeps the tensor's dtype.
  at::Scalar sc(s);
  switch (op) {
    case TB_OP_ADD: r = x.add(sc); break;
    case TB_OP_SUB: r = x.sub(sc); break;
    case TB_OP_MUL: r = x.mul(sc); break;
    case TB_OP_DIV: r = x.div(sc); break;
    case TB_OP_POW: r = x.pow(sc); break;
    case TB_OP_GT: r = x.gt(sc); break;
    case TB_OP_GE: r = x.ge(sc); break;
    case TB_OP_LT: r = x.lt(sc); break;
    case TB_OP_LE: r = x.le(sc); break;
    case TB_OP_EQ: r = x.eq(sc); break;
    case TB_OP_NE: r = x.ne(sc); break;
    case TB_OP_RSUB: r = at::rsub(x, sc); break;
    case TB_OP_MAXIMUM: r = x.clamp_min(sc); break;
    case TB_OP_MINIMUM: r = x.clamp_max(sc); break;
    default: throw std::invalid_argument("unknown scalar op " + std::to_string(op));
  }
  *out = Wrap(r);
  TB_CATCH
}

char* tb_clamp(tb_tensor a, double lo, double hi, int has_lo, int has_hi, tb_tensor* out) {
  TB_TRY
  c10::optional<at::Scalar> l, h;
  if (has_lo) l = at::Scalar(lo);
  if (has_hi) h = at::Scalar(hi);
  *out = Wrap(at::clamp(T(a), l, h));
  TB_CATCH
}

char* tb_where(tb_tensor cond, tb_tensor a, tb_tensor b, tb_tensor* out) {
  TB_TRY
  *out = Wrap(at::where(T(cond), T(a), T(b)));
  TB_CATCH
}

char* tb_masked_select(tb_tensor a, tb_tensor mask, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).masked_select(T(mask)));
  TB_CATCH
}

char* tb_copy_(tb_tensor dst, tb_tensor src) {
  TB_TRY
  T(dst).copy_(T(src));
  TB_CATCH
}

char* tb_reduce(int op, tb_tensor a, const int64_t* dims, int ndims, int keepdim, int unbiased, tb_tensor* out) {
  TB_TRY
  const at::Tensor& x = T(a);
  bool kd = keepdim != 0;
  bool all = ndims == 0;
  at::IntArrayRef d = tb::Dims(dims, ndims);
  at::Tensor r;
  auto single = [&]() -> int64_t {
    if (ndims != 1) throw std::invalid_argument("this reduction takes one dimension or none");
    return dims[0];
  };
  switch (op) {
    case TB_RED_SUM: r = all ? x.sum() : x.sum(d, kd); break;
    case TB_RED_MEAN: r = all ? x.mean() : x.mean(d, kd); break;
    case TB_RED_STD: r = all ? x.std(unbiased != 0) : x.std(d, unbiased != 0, kd); break;
    case TB_RED_VAR: r = all ? x.var(unbiased != 0) : x.var(d, unbiased != 0, kd); break;
    case TB_RED_MAX: r = all ? x.max() : x.amax(d, kd); break;
    case TB_RED_MIN: r = all ? x.min() : x.amin(d, kd); break;
    case TB_RED_ARGMAX: r = all ? x.argmax() : x.argmax(single(), kd); break;
    case TB_RED_ARGMIN: r = all ? x.argmin() : x.argmin(single(), kd); break;
    case TB_RED_ANY: r = all ? x.any() : x.any(single(), kd); break;
    case TB_RED_ALL: r = all ? x.all() : x.all(single(), kd); break;
    default: throw std::invalid_argument("unknown reduction " + std::to_string(op));
  }
  if (all && kd) {
    std::vector<int64_t> ones(static_cast<size_t>(x.dim()), 1);
    r = r.reshape(ones);
  }
  *out = Wrap(r);
  TB_CATCH
}

// torch.quantile refuses inputs above 2^24 elements; beyond that the two order
// statistics around the rank are found with kthvalue and interpolated the way
// torch.quantile does (lerp), with the rank computed in double precision.
static const int64_t kQuantileLimit = int64_t(1) << 24;

char* tb_quantile(tb_tensor a, double q, int64_t dim, int has_dim, int keepdim, tb_tensor* out) {
  TB_TRY
  const at::Tensor& x = T(a);
  if (!(q >= 0.0 && q <= 1.0)) throw std::invalid_argument("quantile q must be in [0, 1]");
  if (has_dim) {
    *out = Wrap(at::quantile(x, q, dim, keepdim != 0, "linear"));
    return nullptr;
  }
  if (x.numel() <= kQuantileLimit) {
    at::Tensor r = at::quantile(x, q, c10::nullopt, keepdim != 0, "linear");
    *out = Wrap(r);
    return nullptr;
  }
  if (!at::isFloatingType(x.scalar_type())) throw std::invalid_argument("quantile needs a floating-point tensor");
  at::Tensor flat = x.reshape({-1});
  int64_t n = flat.numel();
  at::Tensor r;
  if (flat.isnan().any().item<bool>()) {
    r = at::full({}, std::numeric_limits<double>::quiet_NaN(), flat.options());
  } else {
    double rank = q * static_cast<double>(n - 1);
    int64_t below = static_cast<int64_t>(std::floor(rank));
    int64_t above = static_cast<int64_t>(std::ceil(rank));
    at::Tensor vb = std::get<0>(flat.kthvalue(below + 1));
    at::Tensor va = above == below ? vb : std::get<0>(flat.kthvalue(above + 1));
    at::Tensor w = at::full({}, rank - static_cast<double>(below), flat.options());
    r = vb.lerp(va, w);
  }
  if (keepdim) {
    std::vector<int64_t> ones(static_cast<size_t>(x.dim()), 1);
    r = r.reshape(ones);
  }
  *out = Wrap(r);
  TB_CATCH
}

char* tb_kthvalue(tb_tensor a, int64_t k, int64_t dim, int keepdim, tb_tensor* values, tb_tensor* indices) {
  TB_TRY
  auto r = T(a).kthvalue(k, dim, keepdim != 0);
  *values = Wrap(std::get<0>(r));
  *indices = Wrap(std::get<1>(r));
  TB_CATCH
}

char* tb_sort(tb_tensor a, int64_t dim, int descending, tb_tensor* values, tb_tensor* indices) {
  TB_TRY
  auto r = T(a).sort(dim, descending != 0);
  *values = Wrap(std::get<0>(r));
  *indices = Wrap(std::get<1>(r));
  TB_CATCH
}

char* tb_reshape(tb_tensor a, const int64_t* sizes, int ndim, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).reshape(tb::Dims(sizes, ndim)));
  TB_CATCH
}

char* tb_view(tb_tensor a, const int64_t* sizes, int ndim, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).view(tb::Dims(sizes, ndim)));
  TB_CATCH
}

char* tb_permute(tb_tensor a, const int64_t* dims, int ndim, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).permute(tb::Dims(dims, ndim)));
  TB_CATCH
}

char* tb_transpose(tb_tensor a, int64_t d0, int64_t d1, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).transpose(d0, d1));
  TB_CATCH
}

char* tb_squeeze(tb_tensor a, int64_t dim, int has_dim, tb_tensor* out) {
  TB_TRY
  *out = Wrap(has_dim ? T(a).squeeze(dim) : T(a).squeeze());
  TB_CATCH
}

char* tb_unsqueeze(tb_tensor a, int64_t dim, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).unsqueeze(dim));
  TB_CATCH
}

char* tb_narrow(tb_tensor a, int64_t dim, int64_t start, int64_t length, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).narrow(dim, start, length));
  TB_CATCH
}

char* tb_index_select(tb_tensor a, int64_t dim, tb_tensor index, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).index_select(dim, T(index)));
  TB_CATCH
}

char* tb_gather(tb_tensor a, int64_t dim, tb_tensor index, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).gather(dim, T(index)));
  TB_CATCH
}

static std::vector<at::Tensor> List(const tb_tensor* ts, int n) {
  if (n <= 0) throw std::invalid_argument("empty tensor list");
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

char* tb_cat(const tb_tensor* ts, int n, int64_t dim, tb_tensor* out) {
  TB_TRY
  *out = Wrap(at::cat(List(ts, n), dim));
  TB_CATCH
}

char* tb_stack(const tb_tensor* ts, int n, int64_t dim, tb_tensor* out) {
  TB_TRY
  *out = Wrap(at::stack(List(ts, n), dim));
  TB_CATCH
}

char* tb_expand(tb_tensor a, const int64_t* sizes, int ndim, tb_tensor* out) {
  TB_TRY
  *out = Wrap(T(a).expand(tb::Dims(sizes, ndim)));
  TB_CATCH
}

}  // extern "C"
