// Worker: the per-lcore state of one poll-mode worker. Everything a worker
// writes per packet lives here (counters, TX buffers, scratch vectors), so
// workers share no cache lines on the fast path. Counters are summed on read.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "core/drop_reason.hh"
#include "core/meta.hh"
#include "core/net.hh"
#include "core/stage.hh"

namespace sluice {

inline constexpr uint16_t kBurst = 32;
inline constexpr uint16_t kTxBufSize = 64;
inline constexpr uint16_t kMaxPorts = 32;  // RTE_MAX_ETHPORTS in Debian's build

// Linux net_device stats names.
struct DevCounters {
  uint64_t rx_packets, rx_bytes, rx_dropped, rx_nohandler, rx_otherhost_dropped, multicast;
  uint64_t tx_packets, tx_bytes, tx_dropped;
};

// The core's stages (show runtime); features register their own.
namespace stage {
extern const StageId port_rx, classify, netif_receive, tap, tc_ingress, deliver, xmit, tc_egress,
    vlan_xmit, port_xmit, port_tx;
}

struct Worker;
class Dataplane;

// Work every worker does once per poll loop, registered by features
// (Dataplane::add_worker_poll).
using WorkerPoll = void (*)(Worker& w, void* ctx);

// One (port, RX queue) pair a worker polls.
struct RxPoll {
  uint16_t port;
  uint16_t queue;
  Device* dev;
};

struct TxBuffer {
  uint16_t n = 0;
  uint16_t dev = 0;  // device index of the port (for counters)
  rte_mbuf* pkts[kTxBufSize];
};

// Cache-line aligned (and so padded to whole lines): the runtime counters,
// TX buffers and free batch of one worker never share a line with another
// worker's, whatever the heap puts next to it.
struct alignas(64) Worker {
  Worker(Net& net, unsigned id, unsigned lcore = 0);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  Net& net;
  unsigned id;     // 0..n-1, also the RCU thread id and the TX queue index on every port
  unsigned lcore;  // EAL lcore it runs on
  uint16_t tx_queue = 0;

  std::unique_ptr<DevCounters[]> ctr;                              // [kMaxDevices]
  std::unique_ptr<std::array<uint64_t, kNumDropReasons>[]> drops;  // [kMaxDevices]
  StageClock runtime;  // show runtime: per stage calls, packets, exclusive cycles
  std::array<TxBuffer, kMaxPorts> txbuf;
  uint64_t tx_dirty = 0;  // bitmask of ports with buffered packets

  DevCounters& c(uint16_t dev) { return ctr[dev]; }

  // What it polls, and for whom (Dataplane::start_workers sets both).
  std::vector<RxPoll> polls;
  Dataplane* owner = nullptr;

  // The poll loop, on the worker's lcore until dp asks the workers to stop:
  // RX bursts of every (port, queue) into the receive path, frames injected
  // by the control thread, the features' worker polls, the TX flush, and a
  // quiescent state for RCU.
  void run(Dataplane& dp);

  // Frames made off the worker (by the control thread: ARP probes, ICMP
  // errors, packets released by neighbour resolution) that must leave
  // through this worker's TX queues. Each mbuf's meta.dev names the device
  // for dev_queue_xmit. SP/SC ring, created by enable_inject(); drained by
  // inject_xmit() (src/core/netif.hh) once per poll loop.
  rte_ring* inject = nullptr;
  void enable_inject();

  // Free with a named reason, counted against dev. Batched: freed on flush_free().
  void drop(rte_mbuf* m, uint16_t dev, DropReason r) {
    if (dev < kMaxDevices) drops[dev][static_cast<unsigned>(r)]++;
    if (traced(m)) [[unlikely]]
      trace_drop(*this, m, dev, r);
    free_later(m);
  }
  // Free without a drop (consumed).
  void free_later(rte_mbuf* m) {
    if (traced(m)) [[unlikely]]
      trace_consumed(*this, m);
    if (nfree_ == kFreeBatch) flush_free();
    free_[nfree_++] = m;
  }
  void flush_free() {
    if (nfree_ != 0) {
      rte_pktmbuf_free_bulk(free_, nfree_);
      nfree_ = 0;
    }
  }

  // Sends every buffered TX packet (called at the end of each poll round).
  void flush_tx();
  // Sends one port's buffer; what the NIC refuses is dropped (txq_full, tx_dropped).
  void flush_port(uint16_t port);
  void reset_counters();

 private:
  static constexpr unsigned kFreeBatch = 64;
  rte_mbuf* free_[kFreeBatch];
  unsigned nfree_ = 0;
};

}  // namespace sluice
