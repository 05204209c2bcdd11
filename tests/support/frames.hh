// Synthetic frames and recording handlers for tests of the receive path.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "core/device.hh"
#include "core/meta.hh"
#include "core/net.hh"
#include "core/worker.hh"
#include "support/eal_env.hh"

namespace sluice::test {

inline rte_ether_addr mac(const char* s) {
  rte_ether_addr a;
  rte_ether_unformat_addr(s, &a);
  return a;
}

struct FrameSpec {
  std::string dst = "02:00:00:00:00:01";
  std::string src = "02:00:00:00:00:aa";
  uint16_t type = 0x0800;      // ethertype or 802.3 length
  std::vector<uint32_t> tags;  // each: (tpid << 16) | tci, outermost first
  std::vector<uint8_t> payload = std::vector<uint8_t>(46, 0x11);
};

inline rte_mbuf* frame(const FrameSpec& f) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool());
  if (m == nullptr) return nullptr;
  size_t len = 14 + 4 * f.tags.size() + f.payload.size();
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(len)));
  rte_ether_addr d = mac(f.dst.c_str()), s = mac(f.src.c_str());
  std::memcpy(p, &d, 6);
  std::memcpy(p + 6, &s, 6);
  size_t o = 12;
  for (uint32_t t : f.tags) {
    p[o] = t >> 24;
    p[o + 1] = t >> 16;
    p[o + 2] = t >> 8;
    p[o + 3] = t;
    o += 4;
  }
  p[o] = f.type >> 8;
  p[o + 1] = f.type & 0xff;
  std::memcpy(p + o + 2, f.payload.data(), f.payload.size());
  return m;
}

// What a handler saw.
struct Seen {
  std::string who;  // handler / tap label
  rte_mbuf* m;
  uint16_t dev, orig_dev, protocol;
  PktType pkt_type;
  uint8_t rounds;
  Direction dir;
  bool vlan;
  uint16_t vid;
  std::vector<uint8_t> head;  // first bytes of the frame, copied
};

struct Recorder {
  std::vector<Seen> seen;
  std::vector<Seen> of(const std::string& who) const {
    std::vector<Seen> v;
    for (auto& s : seen)
      if (s.who == who) v.push_back(s);
    return v;
  }
};

// A protocol handler / tap that records into a Recorder.
struct Probe {
  Recorder* rec;
  std::string who;
  bool free_pkts = true;
};

inline void record(Probe* p, rte_mbuf* m, Direction dir) {
  const PktMeta& md = meta(m);
  p->rec->seen.push_back(Seen{
      p->who, m, md.dev, md.orig_dev, md.protocol, static_cast<PktType>(md.pkt_type), md.rounds,
      dir, bool(md.flags & kFlagVlan), uint16_t(md.vlan_tci & 0xfff),
      std::vector<uint8_t>(rte_pktmbuf_mtod(m, uint8_t*),
                           rte_pktmbuf_mtod(m, uint8_t*) + std::min<uint32_t>(m->data_len, 32))});
}

inline void probe_proto(Worker&, void* ctx, rte_mbuf** pkts, uint16_t n) {
  auto* p = static_cast<Probe*>(ctx);
  for (uint16_t i = 0; i < n; i++) {
    record(p, pkts[i], Direction::ingress);
    if (p->free_pkts) rte_pktmbuf_free(pkts[i]);
  }
}

inline void probe_tap(Worker&, const Device&, void* ctx, rte_mbuf* const* pkts, uint16_t n,
                      Direction dir) {
  auto* p = static_cast<Probe*>(ctx);
  for (uint16_t i = 0; i < n; i++) record(p, pkts[i], dir);
}

// A device xmit that records and frees.
struct XmitSink {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint16_t> devs;
};
inline void sink_xmit(Worker&, Device& dev, rte_mbuf** pkts, uint16_t n) {
  auto* s = static_cast<XmitSink*>(dev.xmit_ctx);
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    if (meta(m).flags & kFlagVlan) {
      // what a port would put on the wire
      PktMeta md = meta(m);
      uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, 4));
      std::memmove(p, p + 4, 12);
      p[12] = md.vlan_proto >> 8;
      p[13] = md.vlan_proto & 0xff;
      p[14] = md.vlan_tci >> 8;
      p[15] = md.vlan_tci & 0xff;
    }
    auto* d = rte_pktmbuf_mtod(m, uint8_t*);
    s->frames.emplace_back(d, d + m->data_len);
    s->devs.push_back(dev.index);
    rte_pktmbuf_free(m);
  }
}

}  // namespace sluice::test
