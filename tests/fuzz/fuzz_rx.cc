// fuzz_rx: arbitrary frames through the whole receive path of sluice — the
// real stages (rx_csum fixup, port_receive: taps, VLAN untag, bond and
// bridge rx_handlers, hooks, L3 input/forward/local, mirrors and a capture
// with a filter) of the dataplane of topo/rx.yaml, on mbufs the fuzzer
// makes (one or several segments). The worker runs on the fuzzer's thread
// the way Worker::run does it: RCU online, a burst per port, worker polls,
// TX flush, quiescent; the control thread's timers run between inputs, and
// the packet trace is armed for a few packets every 64 inputs.
//
// Input: records, each
//   ctl   bits 0-2 port p0..p7 (p6 goes through rx_csum::receive, as a
//                  net_af_packet port does), bits 3-4 segments - 1,
//                  bit 5 a PMD-stripped VLAN tag (two TCI bytes follow),
//                  bit 6 the first segment holds only 1..14 bytes,
//                  bit 7 checksum flags from the next byte
//   len   2 bytes, big-endian (cut to what is left)
//   frame len bytes
// Consecutive records for one port form one burst (at most 32).
//
// Failure: any sanitizer report, or mbufs of the fuzzer's pool that are
// not back after the input and the timers (a leak on the packet path).
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/device.hh"
#include "core/meta.hh"
#include "core/netif.hh"
#include "core/rx_csum.hh"
#include "core/worker.hh"
#include "fuzz/fuzz_eal.hh"

using namespace sluice;

namespace {

constexpr unsigned kPoolSize = 4095;
constexpr unsigned kPorts = 8;

struct State {
  std::unique_ptr<Dataplane> dp;
  rte_mempool* pool = nullptr;  // the fuzzer's frames
  Device* port[kPorts] = {};
  std::unique_ptr<rx_csum::RxFixup> fixup;
  uint64_t inputs = 0;
  uint64_t now_ms = 0;
};
State* g = nullptr;

uint64_t ms_now() {
  return rte_get_tsc_cycles() / (rte_get_tsc_hz() / 1000);
}

void run_control() {
  g->now_ms = ms_now();
  g->dp->run_timers(g->now_ms);
  // The packet trace (src/trace) marks some of the next packets: its
  // records are made on the packet path; shown and cleared now and then.
  auto& reg = CommandRegistry::instance();
  reg.run(*g->dp, {"trace", "add", "16"});
  if (g->inputs % 1024 == 0) {
    reg.run(*g->dp, {"show", "trace", "summary"});
    reg.run(*g->dp, {"show", "trace", "packet", "1"});
    reg.run(*g->dp, {"clear", "trace"});
  }
}

// One frame as an mbuf chain of nseg segments (first_small: a first
// segment of 1..14 bytes, inside the Ethernet header).
rte_mbuf* make_frame(const uint8_t* p, size_t len, unsigned nseg, bool first_small) {
  const size_t room = RTE_MBUF_DEFAULT_DATAROOM;
  if (len > room * nseg) len = room * nseg;
  if (nseg > len) nseg = len == 0 ? 1 : static_cast<unsigned>(len);
  rte_mbuf* head = nullptr;
  size_t off = 0;
  for (unsigned s = 0; s < nseg; s++) {
    size_t left = len - off;
    size_t n = s + 1 == nseg ? left : left / (nseg - s);
    if (s == 0 && first_small && nseg > 1 && len > 1) n = 1 + (len % 14);
    if (n > room) n = room;
    if (s + 1 < nseg && n >= left) n = left - (nseg - s - 1);  // every segment holds a byte
    rte_mbuf* m = rte_pktmbuf_alloc(g->pool);
    if (m == nullptr) {
      fprintf(stderr, "fuzz_rx: the fuzzer's pool is empty (%u of %u mbufs in use): a leak\n",
              kPoolSize - rte_mempool_avail_count(g->pool), kPoolSize);
      abort();
    }
    char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(n));
    if (n) std::memcpy(d, p + off, n);
    off += n;
    if (head == nullptr) {
      head = m;
    } else if (rte_pktmbuf_chain(head, m) != 0) {
      rte_pktmbuf_free(m);
      break;
    }
  }
  return head;
}

void receive(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  Rcu& rcu = g->dp->rcu;
  rcu.online(w.id);
  w.runtime.mark = rte_rdtsc();  // as Worker::run: the burst's stages count from here
  if (dev.rx_fixup != nullptr)
    rx_csum::receive(w, dev, pkts, n);
  else
    port_receive(w, dev, pkts, n);
  if (w.inject != nullptr) inject_xmit(w);
  for (const auto& [fn, ctx] : g->dp->worker_polls) fn(w, ctx);
  w.flush_tx();
  rcu.quiescent(w.id);
  rcu.offline(w.id);
}

void setup(const char* prog) {
  fuzz::init_eal(prog, "0-1", 512);
  g = new State;
  g->dp = fuzz::build_rx_dataplane();
  Dataplane& dp = *g->dp;
  g->pool = rte_pktmbuf_pool_create("fuzz_rx", kPoolSize, 0, kMbufPrivSize,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (g->pool == nullptr || dp.workers.empty()) abort();
  for (unsigned i = 0; i < kPorts; i++) {
    std::string n = "p" + std::to_string(i);
    g->port[i] = dp.net.find(n);
    if (g->port[i] == nullptr) abort();
  }
  // p6 as a kernel peer's port (net_af_packet): checksum completion and
  // segmentation of oversize TCP before port_receive.
  g->fixup = std::make_unique<rx_csum::RxFixup>(dp.pool_for_socket(0), nullptr, 65536, 1, "fuzz");
  g->port[6]->rx_fixup = g->fixup.get();
  dp.rcu.register_thread(dp.workers[0]->id);
  // A capture of everything a filter selects, on every device, written to
  // /dev/null by its writer thread.
  CmdResult r = CommandRegistry::instance().run(
      dp, {"capture", "start", "any", "both", "udp", "or", "icmp", "or", "vlan", "or", "arp",
           "file", "/dev/null", "snaplen", "128"});
  if (r.status != 0) {
    fprintf(stderr, "fuzz_rx: capture start: %s\n", r.text.c_str());
    abort();
  }
  run_control();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  setup((*argv)[0]);
  (void)argc;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Worker& w = *g->dp->workers[0];
  rte_mbuf* burst[kBurst];
  uint16_t n = 0;
  Device* burst_dev = nullptr;
  size_t i = 0;
  while (i < size) {
    uint8_t ctl = data[i++];
    if (size - i < 2) break;
    size_t len = static_cast<size_t>(data[i]) << 8 | data[i + 1];
    i += 2;
    uint16_t tci = 0;
    uint8_t csum = 0;
    if (ctl & 0x20) {
      if (size - i < 2) break;
      tci = static_cast<uint16_t>(data[i] << 8 | data[i + 1]);
      i += 2;
    }
    if (ctl & 0x80) {
      if (size - i < 1) break;
      csum = data[i++];
    }
    if (len > size - i) len = size - i;
    Device* dev = g->port[ctl & 7];
    rte_mbuf* m = make_frame(data + i, len, 1 + ((ctl >> 3) & 3), ctl & 0x40);
    i += len;
    if (ctl & 0x20) {
      m->ol_flags |= RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED;
      m->vlan_tci = tci;
    }
    if (ctl & 0x80) {
      static const uint64_t ip[4] = {0, RTE_MBUF_F_RX_IP_CKSUM_GOOD, RTE_MBUF_F_RX_IP_CKSUM_BAD,
                                     RTE_MBUF_F_RX_IP_CKSUM_NONE};
      static const uint64_t l4[4] = {0, RTE_MBUF_F_RX_L4_CKSUM_GOOD, RTE_MBUF_F_RX_L4_CKSUM_BAD,
                                     RTE_MBUF_F_RX_L4_CKSUM_NONE};
      m->ol_flags |= ip[csum & 3] | l4[(csum >> 2) & 3];
    }
    if (n != 0 && (dev != burst_dev || n == kBurst)) {
      receive(w, *burst_dev, burst, n);
      n = 0;
    }
    burst_dev = dev;
    burst[n++] = m;
  }
  if (n != 0) receive(w, *burst_dev, burst, n);
  w.flush_free();
  if (++g->inputs % 64 == 0) run_control();
  return 0;
}
