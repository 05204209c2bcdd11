// What the worker-side files of src/l3 share (IPv4, IPv6, ARP): the context
// of one protocol-handler call, protocol numbers, private copies. Internal to
// src/l3; the output half is output.hh.
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_mbuf.h>

#include "core/worker.hh"
#include "hooks/hooks.hh"
#include "l3/l3.hh"

namespace sluice::l3 {

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmp6 = 58;
inline constexpr unsigned kOutMax = 64;  // RTE_HASH_LOOKUP_BULK_MAX

// One protocol-handler call (or okfn call) on a worker: the tables it reads
// are those of the snapshot taken at its start.
struct Ctx {
  Worker& w;
  L3& l3;
  WorkerL3& ws;
  const Snapshot* s;
};

// Packets made here (ICMP errors, echo replies, resets) for ip_local_out.
struct PktVec {
  uint16_t n = 0;
  rte_mbuf* pkts[kOutMax];
  void push(rte_mbuf* m) { pkts[n++] = m; }
};

// Runs hook point `point` (in = in; out = outs[i] per packet, or none) over
// pkts, keeping order: idx[j] = the position in pkts of the j-th packet kept.
// Returns how many were kept (all of them without hooks).
inline uint16_t run_hook(Ctx& c, uint8_t point, uint16_t in, rte_mbuf** pkts, uint16_t n,
                         uint16_t* outs, uint16_t* idx) {
  for (uint16_t i = 0; i < n; i++) idx[i] = i;
  if (n == 0 || c.l3.hooks == nullptr) return n;
  hooks::State st{point, static_cast<uint16_t>(c.w.id), in, kNoDev, outs};
  return c.l3.hooks->run(c.w, st, pkts, n, in, idx);
}

// The copy of unshare(): m is released; nullptr when no mbuf was left.
[[gnu::noinline]] inline rte_mbuf* unshare_copy(Worker& w, rte_mbuf* m) {
  rte_mbuf* c = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
  if (c != nullptr) std::memcpy(rte_mbuf_to_priv(c), rte_mbuf_to_priv(m), sizeof(PktMeta));
  w.free_later(m);
  return c;
}

// A private, writable copy when the packet is shared (several handlers) or
// indirect (skb_share_check); else m itself.
inline rte_mbuf* unshare(Worker& w, rte_mbuf* m) {
  if (rte_mbuf_refcnt_read(m) == 1 && RTE_MBUF_DIRECT(m)) return m;
  return unshare_copy(w, m);
}

}  // namespace sluice::l3
