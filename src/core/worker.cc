#include "core/worker.hh"

#include <cstdio>
#include <cstring>

#include <rte_ethdev.h>

#include "core/dataplane.hh"
#include "core/netif.hh"
#include "core/rx_csum.hh"

namespace sluice {

// In the order a packet meets them (show runtime lists stages in registration order).
namespace stage {
const StageId port_rx = stage_register("port-rx", 100);
const StageId classify = stage_register("eth-type-trans", 110);
const StageId netif_receive = stage_register("netif-receive", 120);
const StageId tap = stage_register("tap", 130);
const StageId tc_ingress = stage_register("tc-ingress", 140);
const StageId deliver = stage_register("protocol-deliver", 400);
const StageId xmit = stage_register("dev-queue-xmit", 700);
const StageId tc_egress = stage_register("tc-egress", 710);
const StageId vlan_xmit = stage_register("vlan-xmit", 740);
const StageId port_xmit = stage_register("port-xmit", 800);
const StageId port_tx = stage_register("port-tx", 900);
}  // namespace stage

Worker::Worker(Net& n, unsigned i, unsigned lc)
    : net(n),
      id(i),
      lcore(lc),
      tx_queue(static_cast<uint16_t>(i)),
      ctr(new DevCounters[kMaxDevices]()),
      drops(new std::array<uint64_t, kNumDropReasons>[kMaxDevices]()) {}

Worker::~Worker() {
  if (inject != nullptr) {
    void* m;
    while (rte_ring_dequeue(inject, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(inject);
  }
  flush_free();
  // Packets still buffered for TX are freed, not sent: the ports may be gone.
  for (auto& b : txbuf) {
    if (b.n != 0) rte_pktmbuf_free_bulk(b.pkts, b.n);
    b.n = 0;
  }
}

void Worker::enable_inject() {
  if (inject != nullptr) return;
  char name[RTE_RING_NAMESIZE];
  std::snprintf(name, sizeof name, "inj%u_%p", id, static_cast<void*>(this));
  inject = rte_ring_create(name, 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

void Worker::reset_counters() {
  std::memset(static_cast<void*>(ctr.get()), 0, sizeof(DevCounters) * kMaxDevices);
  for (unsigned i = 0; i < kMaxDevices; i++) drops[i].fill(0);
  runtime.reset();
}

void Worker::flush_port(uint16_t port) {
  TxBuffer& b = txbuf[port];
  if (b.n == 0) return;
  StageScope scope(runtime, stage::port_tx, b.n);
  uint16_t sent = 0;
  // A short TX ring gets a few more chances before the rest is dropped.
  for (int tries = 0; tries < 4 && sent < b.n; tries++)
    sent += rte_eth_tx_burst(port, tx_queue, b.pkts + sent, b.n - sent);
  DevCounters& c = ctr[b.dev];
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < sent; i++) bytes += b.pkts[i]->pkt_len;
  c.tx_packets += sent;
  c.tx_bytes += bytes;
  for (uint16_t i = sent; i < b.n; i++) {
    c.tx_dropped++;
    drop(b.pkts[i], b.dev, DropReason::txq_full);
  }
  b.n = 0;
}

void Worker::run(Dataplane& dp) {
  Rcu& rcu = dp.rcu;
  rcu.register_thread(id);
  rcu.online(id);
  rte_mbuf* pkts[kBurst];
  StageStats& rx = runtime.stats[stage::port_rx];
  while (!dp.workers_stopping()) {
    for (const RxPoll& p : polls) {
      const bool timed = runtime.next_timed();  // one received burst in kStageSampleEvery
      const uint64_t t0 = timed ? rte_rdtsc() : 0;
      uint16_t n = rte_eth_rx_burst(p.port, p.queue, pkts, kBurst);
      if (n == 0) continue;
      runtime.bursts++;
      runtime.timed = timed;
      rx.calls++;
      rx.packets += n;
      if (timed) {
        // The stages of this burst count from here; what came before is loop time.
        runtime.mark = rte_rdtsc();
        rx.cycles += (runtime.mark - t0) * kStageSampleEvery;
      }
      if (p.dev->rx_fixup != nullptr) [[unlikely]]
        rx_csum::receive(*this, *p.dev, pkts, n);  // a kernel peer's frames (net_af_packet)
      else
        port_receive(*this, *p.dev, pkts, n);
    }
    if (inject != nullptr) inject_xmit(*this);  // frames made by the control thread
    for (const auto& [fn, ctx] : dp.worker_polls) fn(*this, ctx);
    flush_tx();
    rcu.quiescent(id);
    if (dp.park_requested()) [[unlikely]]
      dp.park(*this);  // a reload changes tables in place (Dataplane::pause_workers)
  }
  flush_tx();
  rcu.offline(id);
}

void Worker::flush_tx() {
  if (tx_dirty != 0) {
    // One port-tx interval for all the ports (a bond's members): their
    // flush_port scopes nest in it and read no clock. The wrapper is not a call.
    StageScope scope(runtime, stage::port_tx, 0);
    runtime.stats[stage::port_tx].calls--;
    while (tx_dirty != 0) {
      unsigned port = __builtin_ctzll(tx_dirty);
      tx_dirty &= tx_dirty - 1;
      flush_port(static_cast<uint16_t>(port));
    }
  }
  flush_free();
}

}  // namespace sluice
