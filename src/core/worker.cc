#include "core/worker.hh"

#include <cstdio>
#include <cstring>

#include <rte_ethdev.h>

#include "core/dataplane.hh"
#include "core/netif.hh"
#include "core/rx_csum.hh"

namespace sluice {

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
  for (auto& s : runtime) s = StageStats{};
}

void Worker::flush_port(uint16_t port) {
  TxBuffer& b = txbuf[port];
  if (b.n == 0) return;
  uint64_t t0 = rte_rdtsc();
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
  auto& st = runtime[static_cast<size_t>(Stage::tx)];
  st.calls++;
  st.packets += b.n;
  st.cycles += rte_rdtsc() - t0;
  b.n = 0;
}

void Worker::run(Dataplane& dp) {
  Rcu& rcu = dp.rcu;
  rcu.register_thread(id);
  rcu.online(id);
  rte_mbuf* pkts[kBurst];
  auto& rx = runtime[static_cast<size_t>(Stage::rx)];
  while (!dp.workers_stopping()) {
    for (const RxPoll& p : polls) {
      uint64_t t0 = rte_rdtsc();
      uint16_t n = rte_eth_rx_burst(p.port, p.queue, pkts, kBurst);
      if (n == 0) continue;
      rx.calls++;
      rx.packets += n;
      rx.cycles += rte_rdtsc() - t0;
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
  while (tx_dirty != 0) {
    unsigned port = __builtin_ctzll(tx_dirty);
    tx_dirty &= tx_dirty - 1;
    flush_port(static_cast<uint16_t>(port));
  }
  flush_free();
}

}  // namespace sluice
