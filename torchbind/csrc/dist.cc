// The distributed part of the shim: libtorch's c10d stores and process groups
// (Gloo; NCCL when libtorch was built with it). Groups are laid out in the
// store exactly as torch.distributed lays out its own, so that Go and PyTorch
// ranks can form one group.
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/exception.h>
#ifdef TB_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <cctype>
#include <chrono>
#include <sstream>
#include <thread>

#include "common.h"
#include "../torchbind_dist.h"

struct tb_store_s {
  c10::intrusive_ptr<c10d::Store> store;
};

struct tb_group_s {
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
};

namespace {

using Millis = std::chrono::milliseconds;

// Raised by the shim itself for a backend this libtorch lacks.
struct Unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool Contains(const std::string& lower, const char* what) { return lower.find(what) != std::string::npos; }

// Kind classifies a failure by its message: c10d and Gloo report timeouts
// and lost connections with runtime errors whose text is all there is.
int Kind(const std::string& msg, int fallback) {
  std::string m(msg);
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
  if (Contains(m, "timed out") || Contains(m, "timeout")) return TB_DIST_TIMEOUT;
  if (Contains(m, "closed by peer") || Contains(m, "reset by peer") || Contains(m, "broken pipe") ||
      Contains(m, "connection refused") || Contains(m, "connection closed"))
    return TB_DIST_PEER;
  return fallback;
}

char* Fail(int* kind, int k, const std::string& msg) {
  *kind = k;
  return tb::Error(msg);
}

// Splits a comma-separated list of network interface names.
std::vector<std::string> Interfaces(const char* list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string name; std::getline(ss, name, ',');)
    if (!name.empty()) out.push_back(name);
  return out;
}

// The Gloo devices PyTorch would pick: $GLOO_SOCKET_IFNAME's interfaces, else
// the address the host name resolves to (loopback when it resolves nowhere).
std::vector<std::shared_ptr<gloo::transport::Device>> GlooDevices() {
  std::vector<std::shared_ptr<gloo::transport::Device>> devs;
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname != nullptr)
    for (const auto& name : Interfaces(ifname)) devs.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
  if (devs.empty()) devs.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  return devs;
}

c10::intrusive_ptr<c10d::ProcessGroup> NewBackend(const c10::intrusive_ptr<c10d::Store>& store, int backend,
                                                  int rank, int size, Millis timeout) {
  if (backend == TB_DIST_GLOO) {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    opts->devices = GlooDevices();
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, opts);
  }
#ifdef TB_WITH_NCCL
  if (backend == TB_DIST_NCCL) {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
  }
#endif
  throw Unavailable("backend not built into this libtorch (NCCL needs a CUDA libtorch built with NCCL)");
}

// StoreBarrier is torch.distributed's store-based barrier after creating the
// index-th group: every rank adds one to a counter and waits for all.
void StoreBarrier(c10d::Store& store, int index, int size, Millis timeout) {
  const std::string key = "store_based_barrier_key:" + std::to_string(index + 1);
  store.add(key, 1);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (store.add(key, 0) != size) {
    if (std::chrono::steady_clock::now() > deadline)
      throw c10d::TimeoutError("timed out in the store-based barrier after creating the process group");
    std::this_thread::sleep_for(Millis(10));
  }
}

// InPlace runs a collective on t in place; c10d wants contiguous tensors, so
// a non-contiguous t goes through a contiguous copy.
template <typename Collective>
void InPlace(at::Tensor& t, Collective run) {
  std::vector<at::Tensor> ts{t.is_contiguous() ? t : t.contiguous()};
  run(ts)->wait();
  if (!ts[0].is_same(t)) t.copy_(ts[0]);
}

// Caught turns the exception being handled into an error message and kind.
char* Caught(int* kind) {
  try {
    throw;
  } catch (const Unavailable& e) {
    return Fail(kind, TB_DIST_UNAVAILABLE, e.what());
  } catch (const c10d::TimeoutError& e) {
    return Fail(kind, TB_DIST_TIMEOUT, e.what());
  } catch (const gloo::IoException& e) {
    return Fail(kind, Kind(e.what(), TB_DIST_PEER), e.what());
  } catch (const c10::Error& e) {
    return Fail(kind, Kind(e.what_without_backtrace(), TB_DIST_OTHER), e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Fail(kind, Kind(e.what(), TB_DIST_OTHER), e.what());
  } catch (...) {
    return Fail(kind, TB_DIST_OTHER, "unknown C++ exception");
  }
}

}  // namespace

// DIST_TRY/DIST_CATCH wrap every fallible entry point: no exception escapes,
// and each failure gets its kind.
#define DIST_TRY \
  *kind = 0;     \
  try {          \
    tb::ThreadInit();
#define DIST_CATCH             \
  }                            \
  catch (...) {                \
    return Caught(kind);       \
  }                            \
  return nullptr;

extern "C" {

char* tb_tcpstore_new(const char* host, int port, int world_size, int is_server, int64_t timeout_ms, int* kind,
                      tb_store* out) {
  DIST_TRY
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(port);
  opts.isServer = is_server != 0;
  opts.numWorkers = static_cast<std::size_t>(world_size);
  opts.timeout = Millis(timeout_ms);
  opts.multiTenant = true;
  // Nobody waits in the constructor: c10d's server would wait out the whole
  // timeout without an error when a worker never comes (the group's
  // rendezvous waits instead, and fails), and its client would wait forever
  // for an answer from an address that accepts connections but is no store.
  opts.waitWorkers = false;
  auto store = c10::make_intrusive<c10d::TCPStore>(host, opts);
  if (!opts.isServer) {
    // The client reads answers without a time limit until its first wait
    // sets one: waiting for a key of its own first bounds all later answers.
    const std::string probe = "torchbind/connected";
    store->set(probe, {});
    store->wait({probe}, opts.timeout);
    store->waitForWorkers();  // checks in with the server as PyTorch's clients do
  }
  *out = new tb_store_s{std::move(store)};
  DIST_CATCH
}

char* tb_filestore_new(const char* path, int world_size, int* kind, tb_store* out) {
  DIST_TRY
  *out = new tb_store_s{c10::make_intrusive<c10d::FileStore>(path, world_size)};
  DIST_CATCH
}

void tb_store_free(tb_store s) { delete s; }

char* tb_group_new(tb_store s, int backend, int index, int rank, int world_size, int64_t timeout_ms, int* kind,
                   tb_group* out) {
  DIST_TRY
  if (s == nullptr) throw std::invalid_argument("closed store");
  const Millis timeout(timeout_ms);
  s->store->setTimeout(timeout);
  auto base = c10::make_intrusive<c10d::PrefixStore>("default_pg", s->store);
  auto store = c10::make_intrusive<c10d::PrefixStore>(std::to_string(index), base);
  auto pg = NewBackend(store, backend, rank, world_size, timeout);
  StoreBarrier(*base, index, world_size, timeout);
  pg->setSequenceNumberForGroup();
  *out = new tb_group_s{std::move(pg)};
  DIST_CATCH
}

void tb_group_free(tb_group g) { delete g; }

char* tb_group_allreduce_sum(tb_group g, tb_tensor t, int* kind) {
  DIST_TRY
  if (g == nullptr) throw std::invalid_argument("closed group");
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  InPlace(tb::T(t), [&](std::vector<at::Tensor>& ts) { return g->pg->allreduce(ts, opts); });
  DIST_CATCH
}

char* tb_group_broadcast(tb_group g, tb_tensor t, int root, int* kind) {
  DIST_TRY
  if (g == nullptr) throw std::invalid_argument("closed group");
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  InPlace(tb::T(t), [&](std::vector<at::Tensor>& ts) { return g->pg->broadcast(ts, opts); });
  DIST_CATCH
}

char* tb_group_barrier(tb_group g, int* kind) {
  DIST_TRY
  if (g == nullptr) throw std::invalid_argument("closed group");
  g->pg->barrier()->wait();
  DIST_CATCH
}

}  // extern "C"
