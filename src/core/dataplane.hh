// Dataplane: everything one sluiced owns — the Net (devices, tables), the
// workers, the ports, the topology it was built from — and the small service
// registry through which features (capture, bridge, l3, …) keep their state,
// timers and shutdown steps without the core knowing them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <typeindex>
#include <vector>

#include "config/topology.hh"
#include "core/net.hh"
#include "core/rcu.hh"
#include "core/worker.hh"

struct rte_mempool;

namespace sluice {

struct PortInfo {
  uint16_t dev = 0;      // device index
  uint16_t port_id = 0;  // ethdev port
  std::string devargs;   // as configured
  std::string driver;    // PMD name
  unsigned rx_queues = 1, tx_queues = 1;
  unsigned socket = 0;
  bool link_up = false;
  uint32_t speed_mbps = 0;
  bool full_duplex = false;
  uint64_t link_changes = 0;
  std::vector<std::pair<unsigned, uint16_t>> pollers;  // (worker id, rx queue)
};

class Dataplane {
 public:
  Dataplane();
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  Rcu rcu;
  Net net{rcu};
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<PortInfo> ports;
  std::map<unsigned, rte_mempool*> pools;  // NUMA socket → packet pool
  config::Topology topo;
  uint64_t start_tsc = 0;

  rte_mempool* pool_for_socket(unsigned socket) const;

  // Drops made on the control thread (features that hold packets there,
  // e.g. neighbour resolution queues): freed and counted like Worker::drop,
  // included in drops(). Control thread only.
  void ctl_drop(rte_mbuf* m, uint16_t dev, DropReason r);

  // Sums of the per-worker counters; a device that folds others (below)
  // adds theirs.
  DevCounters counters(uint16_t dev) const;
  // counters(upper) also includes counters(lower), as Linux's bond_get_stats
  // folds every member's stats into the bond's (set at setup, control thread).
  void fold_counters(uint16_t upper, uint16_t lower) { folds_.emplace_back(upper, lower); }
  std::array<uint64_t, kNumDropReasons> drops(uint16_t dev) const;
  void clear_stats();

  // Control-thread timers (run from the control loop) and shutdown steps
  // (run in reverse order of registration before the ports close).
  void add_timer(uint64_t period_ms, std::function<void(uint64_t now_ms)> fn);
  void add_shutdown(std::function<void()> fn);
  // Features' own counters honour `clear stats` too: fn takes their
  // baseline (control thread, like clear_stats()).
  void add_clear_stats(std::function<void()> fn) { clear_fns_.push_back(std::move(fn)); }
  // What features add to `show devices` about a device (key → value, e.g. a
  // bond member's link and state) and to the Prometheus text (whole
  // metric families). Control thread (and the metrics server's).
  using DeviceInfo = std::vector<std::pair<std::string, std::string>>;
  void add_device_info(std::function<void(const Device&, DeviceInfo&)> fn) {
    device_info_fns.push_back(std::move(fn));
  }
  void add_metrics(std::function<void(std::string&)> fn) { metrics_fns.push_back(std::move(fn)); }
  std::vector<std::function<void(const Device&, DeviceInfo&)>> device_info_fns;
  std::vector<std::function<void(std::string&)>> metrics_fns;
  void run_timers(uint64_t now_ms);
  void run_shutdown();

  // Device removal (a reload's removed VLAN, bond or bridge; NETDEV_UNREGISTER):
  // every feature's notifier forgets what it holds for d (addresses, routes,
  // neighbours of d), then d leaves the device table (Net::unregister_device:
  // its index is never reused) and stops folding into a master's counters.
  // Control thread, workers paused or not. False if d was not registered.
  void add_unregister(std::function<void(Device&)> fn) { unregister_fns_.push_back(std::move(fn)); }
  bool unregister_device(Device& d);

  // Worker polls: run by every worker once per poll loop, after its RX
  // queues and before the TX flush (e.g. packets a hook queue consumer
  // answered). Register before the workers start; must not block.
  void add_worker_poll(WorkerPoll fn, void* ctx) { worker_polls.emplace_back(fn, ctx); }
  std::vector<std::pair<WorkerPoll, void*>> worker_polls;

  // After the ports (pmd::setup): the VLAN sub-devices of topo.vlans, then
  // every feature in dependency order (src/core/feature.hh). Throws
  // std::runtime_error.
  void build();
  // The VLAN sub-devices of topo.vlans whose link exists and that do not
  // exist yet (features that make devices call it after their setup).
  void add_vlans();

  // Workers: each runs Worker::run on its lcore, polling the RX queues that
  // ports (and features that add ports) assigned to it; stop asks them to
  // finish their loop and waits.
  void start_workers();
  void stop_workers();
  bool workers_stopping() const { return stop_workers_.load(std::memory_order_relaxed); }

  // The workers' barrier (VPP's worker barrier): pause_workers() asks every
  // running worker to stop at the end of its poll loop (TX flushed, RCU
  // offline) and waits until all have; until resume_workers() the control
  // thread may change what workers read in place (a reload). Packets wait in
  // the RX rings meanwhile. false (nothing paused) when a worker did not
  // stop within timeout_ms. Control thread only.
  bool pause_workers(unsigned timeout_ms = 1000);
  void resume_workers();
  bool park_requested() const { return park_.load(std::memory_order_relaxed); }
  void park(Worker& w);  // worker side, when park_requested()

  // Set by a port's link-state event (any thread): the control loop polls
  // the links at once.
  std::atomic<bool> link_event{false};

  // A feature's state object, created on first use as T(Dataplane&).
  template <class T>
  T& feature() {
    auto& slot = features_[std::type_index(typeid(T))];
    if (!slot) {
      auto p = std::make_shared<T>(*this);
      slot = p;
      feature_order_.push_back(p);
    }
    return *static_cast<T*>(slot.get());
  }
  template <class T>
  T* find_feature() {
    auto it = features_.find(std::type_index(typeid(T)));
    return it == features_.end() ? nullptr : static_cast<T*>(it->second.get());
  }

 private:
  struct Timer {
    uint64_t period_ms, next_ms;
    std::function<void(uint64_t)> fn;
  };
  std::vector<Timer> timers_;
  std::atomic<bool> stop_workers_{false};
  std::atomic<bool> park_{false};
  std::atomic<unsigned> parked_{0};
  bool workers_running_ = false;
  std::vector<std::function<void()>> shutdown_;
  std::vector<std::function<void()>> clear_fns_;
  std::vector<std::function<void(Device&)>> unregister_fns_;
  std::map<std::type_index, std::shared_ptr<void>> features_;
  std::vector<std::shared_ptr<void>> feature_order_;
  // `clear stats` takes a baseline instead of writing the workers' counters.
  std::unique_ptr<std::array<uint64_t, kNumDropReasons>[]> ctl_drops_;  // [kMaxDevices], lazily
  std::unique_ptr<DevCounters[]> base_ctr_;
  std::vector<std::pair<uint16_t, uint16_t>> folds_;  // (upper, lower)
  std::unique_ptr<std::array<uint64_t, kNumDropReasons>[]> base_drops_;
  std::array<StageStats, kMaxStages> base_runtime_{};

  DevCounters raw_counters(uint16_t dev) const;
  std::array<uint64_t, kNumDropReasons> raw_drops(uint16_t dev) const;

 public:
  std::array<StageStats, kMaxStages> runtime() const;
  // clear runtime: a new baseline for the stages only.
  void clear_runtime();
};

}  // namespace sluice
