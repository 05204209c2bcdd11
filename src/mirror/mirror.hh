// Mirrors: Linux's tc action mirred (net/sched/act_mirred.c), as an
// ingress or egress action (Net::add_action) on the source device. Spec:
// ../shared/spec/linux-rx.md §7 and MIR-02..04 (§8.6). Docs: docs/mirror.md.
//
// Where it runs (as tc does): at ingress after the taps of the round (a
// capture on the source sees the frame first, C-1) and before VLAN demux
// and the rx_handler; at egress in dev_queue_xmit before the egress taps
// (tc egress runs before dev_queue_xmit_nit), so a capture on the source
// device sees what a redirect leaves there: nothing.
//
// Per packet of the burst the action is given:
//   a copy made by a mirror (kFlagMirrored) → passed on untouched by every
//     `mirror`: a copy is never mirrored again (a `redirect` may move it);
//   the filter (capture/filter.hh, JIT eBPF) → hits, bytes;
//   1-in-N sampling → sampled_out;
//   the nest limit: a packet that has been through 4 mirror/redirect
//     actions (meta.mirror_depth, carried by copies and moved packets, so
//     it bounds even loops through lo's backlog that Linux does not) is
//     dropped at the 5th (mirred_nest_limit), as MIRRED_NEST_LIMIT;
//   a target that is down → copies_failed (Linux's overlimits); a redirect
//     then drops its packet (mirred_target_down);
//   mirror: rte_pktmbuf_clone (the payload is shared; snaplen trims the
//     clone, not the data), flagged kFlagMirrored, mirror_depth + 1;
//   redirect: the packet itself, mirror_depth + 1; the verdict is stolen.
// Then, burst-wise, to the destination:
//   {dev: X, at: egress}   dev_queue_xmit(X): X's egress actions and taps, its xmit
//   {dev: X, at: ingress}  the receive path on X (netif_receive: taps, rounds,
//                          protocol delivery), pkt_type and protocol kept (mirred
//                          does not re-run eth_type_trans)
//   {vxlan|gre|erspan}     outer headers in a new first segment chained to the
//                          clone (encap.cc); queued per worker and sent at the end
//                          of the poll loop through L3 (ip_local_out: route,
//                          neighbour, dev_queue_xmit)
//   {pcapng: PATH}         a capture sink (capture/capture.hh): copied into its
//                          pool and ring, written by its thread
//
// Drop reasons: mirred_nest_limit, mirred_target_down, mirred_redirect_failed.
// Counters (per mirror, per worker, summed on read, `clear stats` baseline):
//   hits, bytes, copies, copies_failed, sampled_out, skipped (copies passed on)
//   and drops by reason.
// Config: mirrors: (mirror/config.cc). CLI: show mirrors [--json] (commands.cc).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_mbuf.h>

#include "capture/filter.hh"
#include "core/device.hh"
#include "core/drop_reason.hh"
#include "mirror/config.hh"

namespace sluice {
class Dataplane;
struct Worker;
}  // namespace sluice

namespace sluice::mirror {

inline constexpr unsigned kNestLimit = 4;      // MIRRED_NEST_LIMIT
inline constexpr unsigned kMaxWorkers = 64;    // worker ids are RCU thread ids
inline constexpr unsigned kRemoteQueue = 256;  // remote copies a worker holds until its poll

enum MirrorDrop : uint8_t { kDropNest, kDropTargetDown, kDropRedirectFailed, kNumMirrorDrops };
inline constexpr DropReason kMirrorDropReason[kNumMirrorDrops] = {
    DropReason::mirred_nest_limit, DropReason::mirred_target_down,
    DropReason::mirred_redirect_failed};

struct Counters {
  uint64_t hits = 0, bytes = 0, copies = 0, copies_failed = 0, sampled_out = 0, skipped = 0;
  uint64_t drops[kNumMirrorDrops] = {};
  Counters& operator+=(const Counters& o);
  Counters& operator-=(const Counters& o);
};

struct alignas(64) WorkerSlot {
  Counters c;
  uint32_t sample_left = 0;  // packets to let pass before the next sampled one
};

// The outer headers of a remote mirror, built once (encap.cc).
struct Encap {
  uint8_t hdr[64];  // IPv4 (+ UDP + VXLAN | GRE [+ key | + seq + ERSPAN II]), at offset 14
  uint16_t len = 0;  // bytes of hdr after the Ethernet header
  uint16_t ip_id_off = 0;
};

class MirrorSys;

struct Mirror {
  config::Mirror cfg;
  MirrorSys* sys = nullptr;
  uint16_t source = kNoDev;
  uint16_t target = kNoDev;  // dev destinations
  std::unique_ptr<PacketFilter> filter;
  std::array<WorkerSlot, kMaxWorkers> slots;
  Counters base;  // clear stats
  uint32_t actions[2] = {0, 0};
  // Remote destinations.
  uint32_t src_ip = 0, dst_ip = 0;  // host order
  uint16_t underlay_mtu = 1500;
  Encap encap;
  std::atomic<uint32_t> seq{0};  // ERSPAN / GRE sequence numbers
  // pcapng destinations.
  uint32_t sink_id = 0;
  void* sink = nullptr;

  Counters total() const;  // since the last clear stats
};

class MirrorSys {
 public:
  explicit MirrorSys(Dataplane& dp);
  ~MirrorSys();
  MirrorSys(const MirrorSys&) = delete;
  MirrorSys& operator=(const MirrorSys&) = delete;

  Dataplane& dp;
  std::vector<std::unique_ptr<Mirror>> mirrors;

  // Remote copies a worker made, sent from its poll (outside the receive
  // path that made them, so L3 is never re-entered).
  struct alignas(64) RemoteQueue {
    uint16_t n = 0;
    rte_mbuf* pkts[kRemoteQueue];
  };
  std::unique_ptr<RemoteQueue[]> remote;   // [kMaxWorkers] remote copies
  std::unique_ptr<RemoteQueue[]> backlog;  // [kMaxWorkers] egress → ingress copies (netif_rx)
  // How remote copies leave (ip_local_out through L3; tests replace it).
  void (*send_remote)(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n) = nullptr;
  void* send_ctx = nullptr;

  // Control thread: builds every mirror of dp.topo (throws std::runtime_error
  // with FILE:LINE:COL). Registers the actions last.
  void build();
  // reload (workers paused): makes the mirrors those of `cfg` — an unchanged
  // mirror (same name, same settings) keeps its counters, its sink file and
  // its sequence numbers; the others are removed or built anew; every action
  // is put back in file order. Throws like build() (nothing is removed then).
  void rebuild(const Config& cfg, const std::string& file);
  void remove_all();
  void clear_stats();
  const Mirror* find(const std::string& name) const;
  // The worker poll: sends the remote copies this worker queued.
  static void poll(Worker& w, void* ctx);

 private:
  // Builds the mirrors of cfg into out (no action yet).
  void make(const Config& cfg, const std::string& file, std::vector<std::unique_ptr<Mirror>>& out);
  void attach();  // the worker poll (once) and every mirror's actions, in order
  void detach();  // every action removed (each removal waits for a grace period)
  bool poll_added_ = false;
};

// Feature hooks (config.cc registers them).
void setup(Dataplane& dp);
void shutdown(Dataplane& dp);
void clear_stats(Dataplane& dp);

// The actions (ctx = Mirror*), one per side of the source device.
void act_ingress(Worker& w, Device& dev, void* ctx, rte_mbuf** pkts, uint16_t n,
                 ActVerdict* verdicts);
void act_egress(Worker& w, Device& dev, void* ctx, rte_mbuf** pkts, uint16_t n,
                ActVerdict* verdicts);

// encap.cc: the outer headers (IPv4 without DF, TTL 64; UDP with checksum 0
// and a source port from the inner flow; VXLAN I flag + VNI; GRE 0x6558 with
// the key if given; GRE 0x88BE with a sequence number + ERSPAN type II with
// the session, VLAN and T (truncated) bits).
void build_encap(Mirror& m);
// A remote copy of m (or, for a redirect, m itself): a new first segment
// with the outer headers (+ the inner MAC addresses and VLAN tag when the tag
// is held in the metadata) chained to a clone of the frame. nullptr: no mbuf.
rte_mbuf* encapsulate(Mirror& mi, rte_mbuf* m, bool move, uint32_t seq, uint32_t caplen);

}  // namespace sluice::mirror
