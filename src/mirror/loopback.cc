// lo: the loopback device every topology has, as in Linux
// (drivers/net/loopback.c behaviour, spec ../shared/spec/linux-rx.md §7.3).
//
// All-zero MAC, MTU 65536. What is sent to it (a mirror `to: {dev: lo}`,
// dev_queue_xmit from anywhere) is counted as lo's TX, held in the worker's
// lo backlog (netif_rx; bounded, overflow = lo_backlog_full) and, from the
// worker poll at the end of the burst, received again on lo through the
// normal receive path: eth_type_trans against lo's all-zero address (a
// unicast frame to another MAC is OTHERHOST, so ip_rcv drops it and counts
// rx_otherhost_dropped on lo; broadcast is MULTICAST because lo's
// broadcast address is all-zero), taps, rounds, actions, protocol delivery.
//
// Unlike Linux (MIR-04(c)), a frame keeps its mirror marks (kFlagMirrored,
// mirror_depth) through the backlog, so a redirect loop through lo stops
// at the nest limit instead of circulating forever.
#include <cstring>
#include <memory>

#include <rte_mbuf.h>

#include "core/dataplane.hh"
#include "core/feature.hh"
#include "core/meta.hh"
#include "core/netif.hh"
#include "mirror/mirror.hh"

namespace sluice::mirror {

namespace {

constexpr unsigned kLoBacklog = 256;  // frames a worker holds for lo until its poll

struct LoQueue {
  uint16_t n = 0;
  rte_mbuf* pkts[kLoBacklog];
};

struct Loopback {
  explicit Loopback(Dataplane&) : q(new LoQueue[kMaxWorkers]) {}
  std::unique_ptr<LoQueue[]> q;
};

void lo_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  LoQueue& q = static_cast<Loopback*>(dev.xmit_ctx)->q[w.id % kMaxWorkers];
  DevCounters& c = w.c(dev.index);
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    if (q.n == kLoBacklog) {
      c.tx_dropped++;
      w.drop(m, dev.index, DropReason::lo_backlog_full);
      continue;
    }
    c.tx_packets++;
    c.tx_bytes += m->pkt_len;
    q.pkts[q.n++] = m;
  }
}

// The backlog, received on lo. Frames are classified one by one so that
// the marks eth_type_trans clears can be put back.
void lo_poll(Worker& w, void* ctx) {
  auto* lo = static_cast<Device*>(ctx);
  LoQueue& q = static_cast<Loopback*>(lo->xmit_ctx)->q[w.id % kMaxWorkers];
  if (q.n == 0) return;
  rte_mbuf* pkts[kLoBacklog];
  uint16_t n = q.n;
  std::memcpy(pkts, q.pkts, n * sizeof(rte_mbuf*));
  q.n = 0;
  rte_mbuf* rx[kBurst];
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    PktMeta& md = meta(m);
    uint8_t kept = md.flags & (kFlagMirrored | kFlagTrace);  // a traced packet stays traced
    uint8_t depth = md.mirror_depth;
    uint16_t trace_id = md.trace_id;
    uint8_t trace_gen = md.trace_gen;
    if (eth_type_trans(w, *lo, &m, 1) == 0) continue;  // dropped and counted there
    md.flags |= kept;
    md.mirror_depth = depth;
    md.trace_id = trace_id;
    md.trace_gen = trace_gen;
    rx[k++] = m;
    if (k == kBurst) {
      netif_receive(w, rx, k);
      k = 0;
    }
  }
  if (k != 0) netif_receive(w, rx, k);
  w.flush_free();
}

void setup(Dataplane& dp) {
  if (dp.net.find("lo") != nullptr) return;
  auto d = std::make_unique<Device>();
  d->name = "lo";
  d->kind = DevKind::loopback;
  d->mtu = 65536;
  d->promiscuous = true;
  d->xmit = lo_xmit;
  d->xmit_ctx = &dp.feature<Loopback>();
  Device* lo = dp.net.add_device(std::move(d));
  if (lo == nullptr) throw std::runtime_error("lo: no room for the loopback device");
  dp.add_worker_poll(lo_poll, lo);
}

const Feature kFeature{
    .name = "loopback",
    .before = {"bond", "bridge", "l3", "mirror"},
    .setup = setup,
};
const FeatureRegistrar kRegistrar{kFeature};

}  // namespace

}  // namespace sluice::mirror
