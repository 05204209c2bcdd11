// The bridge datapath, burst-wise: br_handle_frame → bridge/pre_routing →
// br_handle_frame_finish → br_forward / br_flood (copies staged per egress
// port, sent newest port first) → br_pass_frame_up (ANOTHER to the bridge),
// and br_dev_xmit for frames the host sends through the bridge device.
// Linux reference: net/bridge/br_input.c, br_forward.c, br_device.c,
// br_vlan.c (spec §4.2–4.7). No allocation, lock or exception per packet;
// the FDB is read with one rte_hash bulk lookup per burst.
#include <algorithm>
#include <cstring>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "bridge/bridge.hh"
#include "core/meta.hh"
#include "core/netif.hh"
#include "hooks/hooks.hh"

namespace sluice::bridge {
namespace {

const StageId kStInput = stage_register("bridge-input", 300);
const StageId kStFlood = stage_register("bridge-flood", 310);
const StageId kStForward = stage_register("bridge-forward", 320);
const StageId kStXmit = stage_register("bridge-xmit", 720);

// What the entries of a bridge point see (NF_HOOK(NFPROTO_BRIDGE, …)'s
// state): in, out = device indexes or kNoDev (local_in: out = the bridge, so
// that a queued frame resumes where it was).
inline hooks::State hook_state(const Worker& w, hooks::Point p, uint16_t in, uint16_t out) {
  return hooks::State{static_cast<uint8_t>(p), static_cast<uint16_t>(w.id), in, out, nullptr};
}

enum class PktClass : uint8_t { unicast, multicast, broadcast };

inline bool is_link_local(const rte_ether_addr& a) {
  const uint8_t* d = a.addr_bytes;
  return d[0] == 0x01 && d[1] == 0x80 && d[2] == 0xc2 && d[3] == 0 && d[4] == 0 &&
         (d[5] & 0xf0) == 0;
}

inline const rte_ether_hdr* eth(const rte_mbuf* m) {
  return rte_pktmbuf_mtod(m, const rte_ether_hdr*);
}

// should_deliver(): hairpin or another port, FORWARDING, link up, VID allowed.
inline bool should_deliver(const Bridge& br, const BridgePort& to, const BridgePort* from,
                           uint16_t vid) {
  return (&to != from || to.has(kPortHairpin)) && to.get_state() == PortState::forwarding &&
         to.dev->up() && (!br.vlan_filtering || to.vlans.has(vid));
}

// br_handle_vlan() on egress + skb->dev := port, on a copy that is ours.
inline void egress_prepare(const Bridge& br, const BridgePort& to, rte_mbuf* m, uint16_t vid) {
  PktMeta& md = meta(m);
  md.dev = to.dev->index;
  if (!br.vlan_filtering) return;
  if (to.vlans.is_untagged(vid)) {
    md.flags &= static_cast<uint8_t>(~kFlagVlan);
    md.vlan_tci = 0;
  } else {
    md.flags |= kFlagVlan;
    md.vlan_proto = br.vlan_proto;
    md.vlan_tci = static_cast<uint16_t>((md.vlan_tci & 0xf000) | vid);
  }
}

// A copy with its own metadata (indirect mbuf: the data is shared, so
// whoever writes into the frame copies first — port_xmit does).
inline rte_mbuf* clone(Worker& w, rte_mbuf* m, uint16_t dev) {
  rte_mbuf* c = rte_pktmbuf_clone(m, m->pool);
  if (c == nullptr) {
    w.drops[dev][static_cast<unsigned>(DropReason::nomem)]++;  // the copy that could not be
    w.c(dev).tx_dropped++;
    return nullptr;
  }
  std::memcpy(rte_mbuf_to_priv(c), rte_mbuf_to_priv(m), sizeof(PktMeta));
  SLUICE_TRACE_FORK(w, m, c);  // the copy is traced on its own, from its parent's path
  return c;
}

inline void stage(WorkerState& ws, const BridgePort& to, rte_mbuf* m) {
  WorkerState::Egress& e = ws.egress[to.position];
  if (e.n == 0) ws.touched.push_back(to.position);
  e.pkts[e.n++] = m;
}

// br_forward_finish ([bridge/post_routing] when post) + br_dev_queue_push_xmit
// for copies leaving through port `to`.
void egress_finish(Worker& w, Bridge& br, BridgePort& to, rte_mbuf** pkts, uint16_t n, bool post) {
  const uint16_t out = to.dev->index;
  if (post) {
    n = br.sys->hooks.run(w, hook_state(w, SLUICE_BRIDGE_POST_ROUTING, kNoDev, out), pkts, n, out);
  }
  SLUICE_TRACE_EACH(w, pkts, n, i, "br_forward", br.dev->index, "to port", out);
  // is_skb_forwardable: the tag is held out of band, so pkt_len is L2 header + payload.
  const uint32_t limit = uint32_t(to.dev->mtu) + RTE_ETHER_HDR_LEN;
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; i++) {
    if (pkts[i]->pkt_len > limit)
      w.drop(pkts[i], out, DropReason::pkt_too_big);
    else
      pkts[k++] = pkts[i];
  }
  if (k != 0) dev_queue_xmit(w, *to.dev, pkts, k);
}

// __br_forward + br_forward_finish + br_dev_queue_push_xmit for every staged
// copy, ports in flood order (newest first).
void flush_egress(Worker& w, WorkerState& ws, Bridge& br, const Device* in, bool from_bridge) {
  if (ws.touched.empty()) return;
  StageScope scope(w.runtime, kStForward, static_cast<uint16_t>(ws.touched.size()));
  std::sort(ws.touched.begin(), ws.touched.end());
  hooks::Registry& reg = br.sys->hooks;
  const hooks::Point fwd = from_bridge ? SLUICE_BRIDGE_LOCAL_OUT : SLUICE_BRIDGE_FORWARD;
  const bool has_fwd = reg.list(fwd) != nullptr;
  const bool post = reg.list(SLUICE_BRIDGE_POST_ROUTING) != nullptr;
  const uint16_t in_dev = from_bridge ? kNoDev : in->index;
  for (uint16_t pos : ws.touched) {
    BridgePort& to = *br.flood_order[pos];
    WorkerState::Egress& e = ws.egress[pos];
    uint16_t n = e.n;
    e.n = 0;
    const uint16_t out = to.dev->index;
    if (has_fwd) n = reg.run(w, hook_state(w, fwd, in_dev, out), e.pkts, n, out);
    if (n != 0) egress_finish(w, br, to, e.pkts, n, post);
  }
  ws.touched.clear();
}

// br_flood(): every eligible port gets a copy; the last gets the original
// unless the frame is also delivered locally. Returns true if m was used.
bool br_flood(Worker& w, WorkerState& ws, Bridge& br, const BridgePort* from, rte_mbuf* m,
              PktClass cls, bool local_rcv, bool from_bridge, uint16_t vid, BrCounters& bc) {
  StageScope scope(w.runtime, kStFlood, 1);
  const BridgePort* last = nullptr;
  if (traced(m)) [[unlikely]]
    trace_rec(w, m, "br_flood", br.dev->index,
              cls == PktClass::unicast     ? "flood (unknown unicast)"
              : cls == PktClass::broadcast ? "flood (broadcast)"
                                           : "flood (multicast)",
              kNoDev, local_rcv ? "vid %u, also up to the bridge" : "vid %u", vid);
  const uint16_t drop_dev = from != nullptr ? from->dev->index : br.dev->index;
  for (const BridgePort* to : br.flood_order) {
    switch (cls) {
      case PktClass::unicast:
        if (!to->has(kPortFlood)) continue;
        break;
      case PktClass::multicast:
        if (!from_bridge && !to->has(kPortMcastFlood)) continue;
        break;
      case PktClass::broadcast:
        if (!from_bridge && !to->has(kPortBcastFlood)) continue;
        break;
    }
    if (!should_deliver(br, *to, from, vid)) continue;
    if (last != nullptr) {
      if (rte_mbuf* c = clone(w, m, last->dev->index)) {
        SLUICE_TRACE(w, c, "br_flood", br.dev->index, "copy to port", last->dev->index);
        egress_prepare(br, *last, c, vid);
        stage(ws, *last, c);
      }
    }
    last = to;
  }
  if (last == nullptr) {
    if (!local_rcv) w.drop(m, drop_dev, DropReason::no_tx_target);
    return !local_rcv;
  }
  bc.flooded++;
  if (local_rcv) {
    bc.flooded_local++;  // so that per-frame accounting can subtract the overlap
    if (rte_mbuf* c = clone(w, m, last->dev->index)) {
      SLUICE_TRACE(w, c, "br_flood", br.dev->index, "copy to port", last->dev->index);
      egress_prepare(br, *last, c, vid);
      stage(ws, *last, c);
    }
    return false;
  }
  SLUICE_TRACE(w, m, "br_flood", br.dev->index, "to the last port", last->dev->index);
  egress_prepare(br, *last, m, vid);
  stage(ws, *last, m);
  return true;
}

// MAC | VID << 48 of an address of the Ethernet header (see mac48_in_header).
inline uint64_t src_key(const rte_ether_addr& a, uint16_t vid) {
  return mac48_in_header(a) | uint64_t(vid) << 48;
}
inline uint16_t src_slot(uint64_t key, uint16_t bridge) {
  return static_cast<uint16_t>(((key ^ bridge) * 0x9e3779b97f4a7c15ULL) >> 52);  // 4096 slots
}

// A learn request for the control thread, at most one per (MAC, VID, port)
// per 100 ms and worker.
void request_learn(WorkerState& ws, BrCounters& bc, const Bridge& br, uint16_t port,
                   const rte_ether_addr& src, uint16_t vid, uint64_t now) {
  const uint64_t key = src_key(src, vid);
  const uint64_t h = (key ^ br.idx) * 0x9e3779b97f4a7c15ULL;
  WorkerState::Recent& r = ws.recent[h >> 56];
  const uint32_t gen = br.fdb->gen.load(std::memory_order_relaxed);
  if (r.key == key && r.bridge == br.idx && r.port == port && r.gen == gen && now - r.ms < 100)
    return;
  LearnEvent ev{src, vid, port, br.idx};
  if (rte_ring_sp_enqueue_elem(ws.learn, &ev, sizeof ev) != 0) {
    bc.learn_ring_full++;
    return;
  }
  r = WorkerState::Recent{key, now, port, br.idx, gen};
  bc.learn_events++;
}

// br_fdb_update() as far as a worker may go: refresh (at most once a second)
// and roaming in place; new entries through the control thread.
inline void fdb_update(WorkerState& ws, BrCounters& bc, const Bridge& br, const BridgePort& p,
                       const rte_ether_addr& src, uint16_t vid, FdbEntry* e, uint64_t now) {
  if (e == nullptr) {
    request_learn(ws, bc, br, p.dev->index, src, vid, now);
    return;
  }
  const uint8_t k = e->kind();
  if (k & kFdbLocal) {  // "received packet with own address as source address"
    bc.own_src++;
    return;
  }
  if (k & kFdbStatic) return;
  if (e->port.load(std::memory_order_relaxed) != p.dev->index) {
    e->port.store(p.dev->index, std::memory_order_relaxed);
    e->updated_ms.store(now, std::memory_order_relaxed);
    br.fdb->gen.fetch_add(1, std::memory_order_relaxed);  // other workers re-verify their sources
    bc.moves++;
    return;
  }
  if (now - e->updated_ms.load(std::memory_order_relaxed) >= 1000)
    e->updated_ms.store(now, std::memory_order_relaxed);
}

// br_should_learn(): the VID a frame would be learned at, false if not allowed.
inline bool should_learn(const Bridge& br, const BridgePort& p, const rte_mbuf* m, uint16_t* vid) {
  *vid = 0;
  if (!br.vlan_filtering) return true;
  const PktMeta& md = meta(m);
  uint16_t v = (md.flags & kFlagVlan) && md.vlan_proto == br.vlan_proto ? md.vlan_tci & 0xfff : 0;
  if (v == 0) v = p.vlans.pvid;
  if (v == 0 || !p.vlans.has(v)) return false;
  *vid = v;
  return true;
}

// __br_handle_local_finish(): learning for link-local frames that go up the port's stack.
void learn_link_local(WorkerState& ws, BrCounters& bc, Bridge& br, const BridgePort& p, rte_mbuf* m,
                      uint64_t now) {
  PortState st = p.get_state();
  if (!p.has(kPortLearning) || br.ageing_ms == 0 ||
      (st != PortState::learning && st != PortState::forwarding))
    return;
  uint16_t vid;
  if (!should_learn(br, p, m, &vid)) return;
  const rte_ether_addr& src = eth(m)->src_addr;
  fdb_update(ws, bc, br, p, src, vid, br.fdb->lookup(src, vid), now);
}

// __allowed_ingress(): the VID of a frame (0 with VLAN filtering off), the
// PVID for untagged and priority-tagged frames; false when it is dropped.
inline bool allowed_ingress(Worker& w, const Bridge& br, const BridgePort& p, rte_mbuf* m,
                            uint16_t* vid_out) {
  *vid_out = 0;
  if (!br.vlan_filtering) return true;
  const uint16_t in = p.dev->index;
  PktMeta& md = meta(m);
  if ((md.flags & kFlagVlan) && md.vlan_proto != br.vlan_proto) {
    // A tag of another protocol goes back into the payload: untagged for us.
    uint16_t proto = md.vlan_proto;
    if (!vlan_insert(m)) {
      w.drop(m, in, DropReason::nomem);
      return false;
    }
    md.protocol = proto;
  }
  uint16_t vid = (md.flags & kFlagVlan) ? md.vlan_tci & 0xfff : 0;
  if (vid == 0) {  // untagged or priority-tagged: the PVID
    if (p.vlans.pvid == 0) {
      w.drop(m, in, DropReason::bridge_no_pvid);
      return false;
    }
    vid = p.vlans.pvid;
    uint16_t pcp = (md.flags & kFlagVlan) ? md.vlan_tci & 0xf000 : 0;
    md.flags |= kFlagVlan;
    md.vlan_proto = br.vlan_proto;
    md.vlan_tci = static_cast<uint16_t>(pcp | vid);
  } else if (!p.vlans.has(vid)) {
    w.drop(m, in, DropReason::bridge_vlan_filter);
    return false;
  }
  *vid_out = vid;
  return true;
}

// The FDB keys of a burst, for one rte_hash bulk lookup. Per frame: its VID,
// the index of its source key (kNone: not learning, or verified lately) and
// of its destination key (kNone: a group address).
struct BurstKeys {
  static constexpr uint8_t kNone = 0xff;
  FdbKey keys[2 * kBurst];
  uint32_t hashes[2 * kBurst];
  uint8_t skey[kBurst];
  uint8_t dkey[kBurst];
  uint16_t vids[kBurst];
  uint16_t slot[kBurst];  // the source's WorkerState::src_seen slot
  unsigned nk = 0;

  uint8_t add(const FdbKey& k) {
    keys[nk] = k;
    hashes[nk] = Fdb::hash(k);
    return static_cast<uint8_t>(nk++);
  }
};

// br_handle_frame_finish's first pass: the VLAN ingress filter, then the
// keys of every frame that passed (compacted into pkts; returns their count).
uint16_t ingress_keys(Worker& w, WorkerState& ws, const Bridge& br, const BridgePort& p,
                      uint32_t gen, rte_mbuf** pkts, uint16_t n, BurstKeys& k, uint64_t now) {
  const uint16_t in = p.dev->index;
  const bool learning = p.has(kPortLearning) && br.ageing_ms != 0;  // hold time 0: always flood
  uint16_t j = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    uint16_t vid;
    if (!allowed_ingress(w, br, p, m, &vid)) continue;
    const rte_ether_hdr* h = eth(m);
    k.skey[j] = BurstKeys::kNone;
    if (learning) {
      // A source this worker saw on this port less than a second ago, with
      // no FDB deletion or move since, needs neither a refresh nor a move.
      const uint64_t key = src_key(h->src_addr, vid);
      k.slot[j] = src_slot(key, br.idx);
      const WorkerState::SrcSeen& c = ws.src_seen[k.slot[j]];
      if (!(c.key == key && c.bridge == br.idx && c.port == in && c.gen == gen &&
            now - c.ms < 1000))
        k.skey[j] = k.add(FdbKey{key, 0});
    }
    k.dkey[j] = rte_is_multicast_ether_addr(&h->dst_addr)
                    ? BurstKeys::kNone
                    : k.add(FdbKey::of_bits(mac48_in_header(h->dst_addr), vid));
    k.vids[j] = vid;
    pkts[j++] = m;
  }
  return j;
}

// Learning of a frame's source (br_fdb_update), and the note in src_seen
// that lets the next frames from it on this port skip the lookup.
inline void learn_source(WorkerState& ws, BrCounters& bc, const Bridge& br, const BridgePort& p,
                         const rte_ether_addr& src, uint16_t vid, FdbEntry* e, uint16_t slot,
                         uint32_t gen, uint64_t now) {
  fdb_update(ws, bc, br, p, src, vid, e, now);
  const uint16_t in = p.dev->index;
  if (e != nullptr && e->is_dynamic() && e->port.load(std::memory_order_relaxed) == in)
    ws.src_seen[slot] = WorkerState::SrcSeen{
        src_key(src, vid), e->updated_ms.load(std::memory_order_relaxed), gen, in, br.idx};
}

// should_deliver's answer for the last (port, VID) of a burst: the frames of
// a burst to one port are asked about once (port state, link, hairpin and
// VLAN membership are the burst's snapshot, as RCU gives the FDB itself).
struct DeliverMemo {
  const BridgePort* to = nullptr;
  uint16_t vid = 0xffff;  // no VID: the first lookup fills it
  bool ok = false;
};

// The FDB's answer for a unicast frame: a local entry (also at VID 0 for a
// miss at another VID) → local delivery only; a remote one → that port if
// should_deliver, else drop no_tx_target; a miss → flood, not local.
// Returns true when m is to be passed up.
inline bool forward_unicast(Worker& w, WorkerState& ws, BrCounters& bc, Bridge& br,
                            const BridgePort& p, rte_mbuf* m, uint16_t vid, FdbEntry* dst,
                            DeliverMemo& memo) {
  const rte_ether_hdr* h = eth(m);
  if (dst == nullptr && vid != 0) {  // local entries also answer at VID 0
    FdbEntry* e0 = br.fdb->lookup(h->dst_addr, 0);
    if (e0 != nullptr && e0->is_local()) dst = e0;
  }
  if (dst != nullptr && dst->is_local()) {  // br_pass_frame_up only, never forwarded
    SLUICE_TRACE(w, m, "br_handle_frame_finish", br.dev->index, "fdb hit: local", kNoDev, "vid %u",
                 vid);
    return true;
  }
  if (dst == nullptr) {
    SLUICE_TRACE(w, m, "br_handle_frame_finish", br.dev->index, "fdb miss", kNoDev, "vid %u", vid);
    br_flood(w, ws, br, &p, m, PktClass::unicast, false, false, vid, bc);  // sends or drops it
    return false;
  }
  BridgePort* to = br.port_of(dst->port.load(std::memory_order_relaxed));
  if (traced(m)) [[unlikely]]
    trace_rec(w, m, "br_handle_frame_finish", br.dev->index, "fdb hit",
              to != nullptr ? to->dev->index : kNoDev, "vid %u", vid);
  if (to != memo.to || vid != memo.vid) [[unlikely]]
    memo = DeliverMemo{to, vid, to != nullptr && should_deliver(br, *to, &p, vid)};
  if (memo.ok) {
    if (to == &p) bc.hairpin++;
    egress_prepare(br, *to, m, vid);
    stage(ws, *to, m);
    bc.forwarded++;
  } else {
    w.drop(m, p.dev->index, DropReason::no_tx_target);
  }
  return false;
}

// br_pass_frame_up() up to its hook: counted on the bridge device, the
// bridge's own VLAN egress rules, then dev = orig_dev = the bridge. False
// when dropped.
inline bool pass_frame_up(Worker& w, const Bridge& br, DevCounters& brc, BrCounters& bc,
                          rte_mbuf* m, uint16_t vid) {
  brc.rx_packets++;
  brc.rx_bytes += m->pkt_len;
  PktMeta& md = meta(m);
  if (br.vlan_filtering) {
    if (!br.vlans.has(vid)) {
      w.drop(m, br.dev->index, DropReason::bridge_vlan_filter);
      return false;
    }
    if (br.vlans.is_untagged(vid)) {
      md.flags &= static_cast<uint8_t>(~kFlagVlan);
      md.vlan_tci = 0;
    }
  }
  SLUICE_TRACE(w, m, "br_pass_frame_up", md.dev, "up to the bridge device", br.dev->index);
  md.dev = br.dev->index;
  md.orig_dev = br.dev->index;  // netif_receive_skb(): a new receive call on the bridge
  bc.local++;
  return true;
}

// br_handle_frame_finish() for a burst of frames that passed pre_routing:
// VLAN ingress filter and FDB keys, one bulk lookup, then per frame
// learning (before the LEARNING-state drop), classification, forward /
// flood, and br_pass_frame_up. Frames for local delivery are appended to local[].
void br_handle_frame_finish(Worker& w, WorkerState& ws, BrCounters& bc, Bridge& br, BridgePort& p,
                            PortState state, rte_mbuf** pkts, uint16_t n, rte_mbuf** local,
                            uint16_t* nlocal, uint64_t now) {
  StageScope scope(w.runtime, kStInput, n);
  const uint32_t gen = br.fdb->gen.load(std::memory_order_relaxed);
  BurstKeys k;
  n = ingress_keys(w, ws, br, p, gen, pkts, n, k, now);
  if (n == 0) return;
  FdbEntry* ents[2 * kBurst];
  br.fdb->lookup_bulk(k.keys, k.hashes, k.nk, ents);

  DevCounters& brc = w.c(br.dev->index);
  DeliverMemo memo;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    const rte_ether_hdr* h = eth(m);
    const uint16_t vid = k.vids[i];
    if (k.skey[i] != BurstKeys::kNone)
      learn_source(ws, bc, br, p, h->src_addr, vid, ents[k.skey[i]], k.slot[i], gen, now);
    if (state == PortState::learning) {
      w.drop(m, p.dev->index, DropReason::bridge_learning_state);
      continue;
    }
    bool up;  // passed up to the bridge device (the bridge device is not promiscuous)
    if (!rte_is_multicast_ether_addr(&h->dst_addr)) {
      up = forward_unicast(w, ws, bc, br, p, m, vid, ents[k.dkey[i]], memo);
    } else {  // no querier: flooded and passed up
      const bool bcast = rte_is_broadcast_ether_addr(&h->dst_addr);
      if (!bcast) brc.multicast++;
      up = !br_flood(w, ws, br, &p, m, bcast ? PktClass::broadcast : PktClass::multicast, true,
                     false, vid, bc);
    }
    if (up && pass_frame_up(w, br, brc, bc, m, vid)) local[(*nlocal)++] = m;
  }
}

// What br_handle_frame does with a link-local frame (01:80:C2:00:00:0X):
// treat it as data, PASS it up the port's stack (learned), give it to
// link_local_in, or drop it.
enum class LinkLocal : uint8_t { data, pass, local_in, dropped };
inline LinkLocal link_local(Worker& w, WorkerState& ws, BrCounters& bc, Bridge& br,
                            const BridgePort& p, rte_mbuf* m, uint64_t now) {
  const unsigned x = eth(m)->dst_addr.addr_bytes[5];
  uint16_t mask = p.group_fwd_mask;  // | group_fwd_mask_required (0 for 802.1Q)
  if (x == 0x00) {                   // STP BPDU
    if (!br.stp_enabled || (mask & 1)) return LinkLocal::data;
    learn_link_local(ws, bc, br, p, m, now);
    bc.link_local_pass++;
    return LinkLocal::pass;  // up the port's stack: LLC → STP
  }
  if (x == 0x01) {  // MAC control (pause): always dropped
    w.drop(m, p.dev->index, DropReason::bridge_pause);
    return LinkLocal::dropped;
  }
  mask |= br.group_fwd_mask;
  if (mask & (1u << x)) return LinkLocal::data;
  if (x == 0x0e) {  // LLDP: learn and PASS, no local_in hook
    learn_link_local(ws, bc, br, p, m, now);
    bc.link_local_pass++;
    return LinkLocal::pass;
  }
  return LinkLocal::local_in;
}

// Link-local frames not forwarded: [bridge/local_in] (in = the port, no
// bridge), then __br_handle_local_finish (learning) and PASS.
void link_local_in(Worker& w, WorkerState& ws, BrCounters& bc, Bridge& br, const BridgePort& p,
                   rte_mbuf** ll, uint16_t n, RxResult* res, uint64_t now) {
  const uint16_t in = p.dev->index;
  n = br.sys->hooks.run(w, hook_state(w, SLUICE_BRIDGE_LOCAL_IN, in, kNoDev), ll, n, in);
  for (uint16_t i = 0; i < n; i++) {
    learn_link_local(ws, bc, br, p, ll[i], now);
    bc.link_local_pass++;
    res[meta(ll[i]).user[0]] = RxResult::pass;
  }
}

// [bridge/local_in] of br_pass_frame_up (in = the port, out = the bridge):
// the survivors go on to the bridge device.
uint16_t local_in(Worker& w, Bridge& br, uint16_t port, rte_mbuf** pkts, uint16_t n) {
  const uint16_t bdev = br.dev->index;
  return br.sys->hooks.run(w, hook_state(w, SLUICE_BRIDGE_LOCAL_IN, port, bdev), pkts, n, bdev);
}

}  // namespace

uint16_t br_handle_frame(Worker& w, Device& dev, void* ctx, rte_mbuf** pkts, uint16_t n,
                         RxResult* res) {
  BridgePort& p = *static_cast<BridgePort*>(ctx);
  Bridge& br = *p.br;
  BridgeSys& sys = *br.sys;
  WorkerState& ws = *sys.workers[w.id];
  BrCounters& bc = ws.ctr[br.idx];
  const PortState state = p.get_state();
  const uint64_t now = sys.now_ms.load(std::memory_order_relaxed);

  rte_mbuf* data[kBurst];
  uint16_t nd = 0;
  rte_mbuf* ll[kBurst];  // link-local frames for bridge/local_in, then PASS
  uint16_t nll = 0;

  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    PktMeta& md = meta(m);
    res[i] = RxResult::consumed;
    md.user[0] = i;
    if (md.pkt_type == static_cast<uint8_t>(PktType::loopback)) {
      res[i] = RxResult::pass;
      continue;
    }
    const rte_ether_hdr* h = eth(m);
    if (rte_is_multicast_ether_addr(&h->src_addr) || rte_is_zero_ether_addr(&h->src_addr)) {
      w.drop(m, dev.index, DropReason::mac_invalid_source);
      continue;
    }
    if (is_link_local(h->dst_addr)) {
      const LinkLocal what = link_local(w, ws, bc, br, p, m, now);
      if (traced(m)) [[unlikely]]
        trace_rec(w, m, "br_handle_frame", dev.index,
                  what == LinkLocal::pass       ? "link-local: PASS up the port"
                  : what == LinkLocal::local_in ? "link-local: bridge/local_in"
                  : what == LinkLocal::data     ? "link-local: forwarded as data"
                                                : "link-local: dropped");
      if (what == LinkLocal::pass) res[i] = RxResult::pass;
      if (what == LinkLocal::local_in) ll[nll++] = m;
      if (what != LinkLocal::data) continue;
    }
    // Port state gate.
    if (state == PortState::forwarding || state == PortState::learning) {
      if (rte_is_same_ether_addr(&h->dst_addr, &br.dev->mac))
        md.pkt_type = static_cast<uint8_t>(PktType::host);
      data[nd++] = m;
    } else {
      w.drop(m, dev.index, DropReason::bridge_ingress_stp_state);  // not learned
    }
  }

  if (nll != 0) link_local_in(w, ws, bc, br, p, ll, nll, res, now);
  if (nd == 0) return kNoDev;

  // bridge/pre_routing (nf_hook_bridge_pre; broute: PASS up the port's own stack).
  if (sys.hooks.list(SLUICE_BRIDGE_PRE_ROUTING) != nullptr) {
    hooks::Registry::Brouted brouted;
    nd = sys.hooks.run(w, hook_state(w, SLUICE_BRIDGE_PRE_ROUTING, dev.index, kNoDev), data, nd,
                       dev.index, nullptr, &brouted);
    for (uint16_t i = 0; i < brouted.n; i++) res[meta(brouted.pkts[i]).user[0]] = RxResult::pass;
    if (nd == 0) return kNoDev;
  }

  rte_mbuf* local[kBurst];
  uint16_t nlocal = 0;
  br_handle_frame_finish(w, ws, bc, br, p, state, data, nd, local, &nlocal, now);
  // Forwarded copies leave first, local delivery comes last.
  flush_egress(w, ws, br, &dev, false);
  if (nlocal == 0) return kNoDev;
  nlocal = local_in(w, br, dev.index, local, nlocal);
  for (uint16_t i = 0; i < nlocal; i++) res[meta(local[i]).user[0]] = RxResult::another;
  return kNoDev;
}

void br_dev_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  StageScope scope(w.runtime, kStXmit, n);
  Bridge& br = *static_cast<Bridge*>(dev.xmit_ctx);
  WorkerState& ws = *br.sys->workers[w.id];
  BrCounters& bc = ws.ctr[br.idx];
  DevCounters& c = w.c(dev.index);
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    PktMeta& md = meta(m);
    c.tx_packets++;
    c.tx_bytes += m->pkt_len;
    uint16_t vid = 0;
    if (br.vlan_filtering) {  // br_allowed_ingress() on the bridge's own VLANs
      if ((md.flags & kFlagVlan) && md.vlan_proto == br.vlan_proto) vid = md.vlan_tci & 0xfff;
      if (vid == 0) {
        if (br.vlans.pvid == 0) {
          w.drop(m, dev.index, DropReason::bridge_no_pvid);
          continue;
        }
        vid = br.vlans.pvid;
        md.flags |= kFlagVlan;
        md.vlan_proto = br.vlan_proto;
        md.vlan_tci = static_cast<uint16_t>((md.vlan_tci & 0xf000) | vid);
      } else if (!br.vlans.has(vid)) {
        w.drop(m, dev.index, DropReason::bridge_vlan_filter);
        continue;
      }
    }
    const rte_ether_hdr* h = eth(m);
    if (rte_is_multicast_ether_addr(&h->dst_addr)) {
      PktClass cls =
          rte_is_broadcast_ether_addr(&h->dst_addr) ? PktClass::broadcast : PktClass::multicast;
      br_flood(w, ws, br, nullptr, m, cls, false, true, vid, bc);
      continue;
    }
    FdbEntry* e = br.fdb->lookup(h->dst_addr, vid);
    if (e == nullptr) {
      SLUICE_TRACE(w, m, "br_dev_xmit", dev.index, "fdb miss", kNoDev, "vid %u", vid);
      br_flood(w, ws, br, nullptr, m, PktClass::unicast, false, true, vid, bc);
      continue;
    }
    BridgePort* to = e->is_local() ? nullptr : br.port_of(e->port.load(std::memory_order_relaxed));
    SLUICE_TRACE(w, m, "br_dev_xmit", dev.index, "fdb hit", to ? to->dev->index : kNoDev, "vid %u",
                 vid);
    if (to != nullptr && should_deliver(br, *to, nullptr, vid)) {
      egress_prepare(br, *to, m, vid);
      stage(ws, *to, m);
      bc.forwarded++;
    } else {
      w.drop(m, dev.index, DropReason::no_tx_target);
    }
  }
  flush_egress(w, ws, br, nullptr, true);
}

void br_stp_rcv(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n) {
  BridgePort& p = *static_cast<BridgePort*>(ctx);
  WorkerState& ws = *p.br->sys->workers[w.id];
  BrCounters& bc = ws.ctr[p.br->idx];
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    const rte_ether_hdr* h = eth(m);
    const uint8_t* llc = reinterpret_cast<const uint8_t*>(h + 1);
    // 01:80:C2:00:00:00, LLC DSAP/SSAP 0x42, UI.
    bool bpdu = m->data_len >= RTE_ETHER_HDR_LEN + 7 && is_link_local(h->dst_addr) &&
                h->dst_addr.addr_bytes[5] == 0 && llc[0] == 0x42 && llc[1] == 0x42 &&
                llc[2] == 0x03;
    if (!bpdu || !p.br->stp_enabled) {
      w.free_later(m);
      continue;
    }
    if (rte_mbuf_refcnt_read(m) > 1) {  // shared with another handler: take a copy
      rte_mbuf* c = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
      if (c != nullptr) std::memcpy(rte_mbuf_to_priv(c), rte_mbuf_to_priv(m), sizeof(PktMeta));
      w.free_later(m);
      if (c == nullptr) continue;
      m = c;
    }
    meta(m).dev = p.dev->index;
    SLUICE_TRACE_FATE(w, m, TraceFate::delivered, p.dev->index, "br_stp_rcv", "BPDU to STP");
    if (rte_ring_sp_enqueue(ws.to_ctl, m) != 0) {
      w.free_later(m);
      continue;
    }
    bc.bpdu_rx++;
  }
}

// ---- okfns: frames a hook queue consumer accepted go on from their point ---------------------

namespace {

// The port a resumed frame belongs to, or nullptr (frames dropped) when
// the device left the bridge while the frame was queued.
BridgePort* resumed_port(Worker& w, uint16_t dev, rte_mbuf** pkts, uint16_t n) {
  Device* d = w.net.dev(dev);
  if (d != nullptr && d->rx_handler.load(std::memory_order_acquire) == br_handle_frame)
    return static_cast<BridgePort*>(d->rx_handler_ctx.load(std::memory_order_relaxed));
  for (uint16_t i = 0; i < n; i++) w.drop(pkts[i], dev, DropReason::no_tx_target);
  return nullptr;
}

// bridge/pre_routing: br_handle_frame_finish, then on as br_handle_frame.
void ok_pre_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void*) {
  BridgePort* port = resumed_port(w, st.in, pkts, n);
  if (port == nullptr) return;
  Bridge& br = *port->br;
  WorkerState& ws = *br.sys->workers[w.id];
  rte_mbuf* local[kBurst];
  uint16_t nlocal = 0;
  br_handle_frame_finish(w, ws, ws.ctr[br.idx], br, *port, port->get_state(), pkts, n, local,
                         &nlocal, br.sys->now_ms.load(std::memory_order_relaxed));
  flush_egress(w, ws, br, port->dev, false);
  if (nlocal == 0) return;
  nlocal = local_in(w, br, port->dev->index, local, nlocal);
  netif_receive(w, local, nlocal);  // RX_HANDLER_ANOTHER: a round on the bridge
}

// bridge/local_in: br_pass_frame_up's netif_receive_skb on the bridge
// device, or (out = kNoDev) a link-local frame learned and PASSed up the
// port's own stack.
void ok_local_in(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void*) {
  BridgePort* port = resumed_port(w, st.in, pkts, n);
  if (port == nullptr) return;
  Bridge& br = *port->br;
  if (st.out != kNoDev) {
    for (uint16_t i = 0; i < n; i++) meta(pkts[i]).dev = br.dev->index;
    netif_receive(w, pkts, n);
    return;
  }
  WorkerState& ws = *br.sys->workers[w.id];
  BrCounters& bc = ws.ctr[br.idx];
  const uint64_t now = br.sys->now_ms.load(std::memory_order_relaxed);
  for (uint16_t i = 0; i < n; i++) {
    learn_link_local(ws, bc, br, *port, pkts[i], now);
    bc.link_local_pass++;
  }
  netif_receive_pass(w, *port->dev, pkts, n);
}

// bridge/post_routing: br_dev_queue_push_xmit on the port st.out.
void ok_post_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void*) {
  if (BridgePort* port = resumed_port(w, st.out, pkts, n))
    egress_finish(w, *port->br, *port, pkts, n, false);
}

}  // namespace

void ok_forward(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void*) {
  if (BridgePort* port = resumed_port(w, st.out, pkts, n))
    egress_finish(w, *port->br, *port, pkts, n,
                  port->br->sys->hooks.list(SLUICE_BRIDGE_POST_ROUTING) != nullptr);
}

void set_okfns(hooks::Registry& reg) {
  reg.set_okfns(SLUICE_BRIDGE_PRE_ROUTING,
                {ok_pre_routing, ok_local_in, ok_forward, ok_forward, ok_post_routing}, nullptr);
}

}  // namespace sluice::bridge
