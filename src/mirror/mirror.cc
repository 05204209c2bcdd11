// tc mirred for sluice (see mirror.hh): the actions, the dispatch to the
// destinations, the worker poll for remote copies and egress→ingress
// copies, setup from the topology.
#include "mirror/mirror.hh"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include "capture/capture.hh"
#include "core/dataplane.hh"
#include "core/meta.hh"
#include "core/netif.hh"
#include "core/worker.hh"
#include "l3/l3.hh"

namespace sluice::mirror {

Counters& Counters::operator+=(const Counters& o) {
  hits += o.hits;
  bytes += o.bytes;
  copies += o.copies;
  copies_failed += o.copies_failed;
  sampled_out += o.sampled_out;
  skipped += o.skipped;
  for (unsigned i = 0; i < kNumMirrorDrops; i++) drops[i] += o.drops[i];
  return *this;
}
Counters& Counters::operator-=(const Counters& o) {
  hits -= o.hits;
  bytes -= o.bytes;
  copies -= o.copies;
  copies_failed -= o.copies_failed;
  sampled_out -= o.sampled_out;
  skipped -= o.skipped;
  for (unsigned i = 0; i < kNumMirrorDrops; i++) drops[i] -= o.drops[i];
  return *this;
}

Counters Mirror::total() const {
  Counters t;
  for (const WorkerSlot& s : slots) t += s.c;
  t -= base;
  return t;
}

namespace {

constexpr uint8_t kFlagsCleared = kFlagPtPrev | kFlagExact;

// What a pcapng sink was fed and took.
void to_sink(Worker& w, Mirror& mi, const Device& dev, rte_mbuf** pkts, uint16_t n, Direction dir,
             Counters& c) {
  if (mi.sink == nullptr) {
    c.copies_failed += n;
    return;
  }
  uint16_t q = CaptureManager::feed(w, dev, mi.sink, pkts, n, dir);
  c.copies += q;
  c.copies_failed += n - q;
}

// The packets of one action call that go to the destination: copies
// (mirror) or the packets themselves (redirect), metadata already set.
void dispatch(Worker& w, MirrorSys& sys, Mirror& mi, Device& src, Direction side, rte_mbuf** out,
              uint16_t n, Counters& c) {
  if (n == 0) return;
  const config::Mirror& cfg = mi.cfg;
  switch (cfg.to) {
    case config::MirrorTarget::dev: {
      Device* t = w.net.dev(mi.target);
      c.copies += n;
      if (!cfg.at_ingress) {
        dev_queue_xmit(w, *t, out, n);
        return;
      }
      for (uint16_t i = 0; i < n; i++) {
        PktMeta& md = meta(out[i]);
        md.orig_dev = mi.target;
        md.rounds = 0;
        if (side == Direction::egress) {  // skb->protocol of what is sent: its type field
          const uint8_t* p = rte_pktmbuf_mtod(out[i], const uint8_t*);
          uint16_t et = static_cast<uint16_t>(p[12] << 8 | p[13]);
          md.protocol = et >= 0x0600 ? et : 0x0004;
        }
      }
      if (side == Direction::ingress) {  // ingress → ingress: synchronous (netif_receive_skb)
        netif_receive(w, out, n);
        return;
      }
      // egress → ingress: through the worker's backlog (netif_rx, Linux 6.8+).
      MirrorSys::RemoteQueue& q = sys.backlog[w.id % kMaxWorkers];
      for (uint16_t i = 0; i < n; i++) {
        if (q.n == kRemoteQueue) {
          c.copies--;
          c.copies_failed++;
          if (cfg.redirect) {
            c.drops[kDropRedirectFailed]++;
            w.drop(out[i], src.index, DropReason::mirred_redirect_failed);
          } else {
            w.free_later(out[i]);
          }
          continue;
        }
        q.pkts[q.n++] = out[i];
      }
      return;
    }
    case config::MirrorTarget::vxlan:
    case config::MirrorTarget::gre:
    case config::MirrorTarget::erspan: {
      MirrorSys::RemoteQueue& q = sys.remote[w.id % kMaxWorkers];
      for (uint16_t i = 0; i < n; i++) {
        if (q.n == kRemoteQueue) {
          c.copies_failed++;
          w.free_later(out[i]);
          continue;
        }
        q.pkts[q.n++] = out[i];
        c.copies++;
      }
      return;
    }
    case config::MirrorTarget::pcapng:
      break;  // handled by the action (no clone)
  }
}

void act(Worker& w, Device& dev, Mirror& mi, rte_mbuf** pkts, uint16_t n, ActVerdict* v,
         Direction side) {
  MirrorSys& sys = *mi.sys;
  WorkerSlot& slot = mi.slots[w.id % kMaxWorkers];
  Counters& c = slot.c;
  const config::Mirror& cfg = mi.cfg;
  const bool redirect = cfg.redirect;
  const bool remote = cfg.to == config::MirrorTarget::vxlan ||
                      cfg.to == config::MirrorTarget::gre || cfg.to == config::MirrorTarget::erspan;
  const bool sink = cfg.to == config::MirrorTarget::pcapng;
  const Device* target = mi.target != kNoDev ? w.net.dev(mi.target) : nullptr;
  const bool target_down = target != nullptr && !target->up();
  rte_mbuf* out[kBurst];
  uint16_t no = 0;
  uint32_t seq = 0;
  bool seq_taken = false;
  for (uint16_t i = 0; i < n; i++) {
    v[i] = ActVerdict::ok;
    rte_mbuf* m = pkts[i];
    PktMeta& md = meta(m);
    if (!redirect && (md.flags & kFlagMirrored)) {  // a copy is never mirrored again
      c.skipped++;
      continue;
    }
    if (mi.filter && !mi.filter->match(m)) continue;
    c.hits++;
    c.bytes += m->pkt_len;
    if (traced(m)) [[unlikely]]
      trace_rec(w, m, side == Direction::ingress ? "mirred (ingress)" : "mirred (egress)",
                dev.index, redirect ? "redirect" : "mirror", mi.target, "%s", cfg.name.c_str());
    if (slot.sample_left != 0) {
      slot.sample_left--;
      c.sampled_out++;
      continue;
    }
    slot.sample_left = cfg.sample - 1;
    if (md.mirror_depth >= kNestLimit) {  // the 5th nested mirred: TC_ACT_SHOT
      c.drops[kDropNest]++;
      v[i] = ActVerdict::stolen;
      w.drop(m, dev.index, DropReason::mirred_nest_limit);
      continue;
    }
    if (target_down) {  // "tc mirred to Houston: device is down": overlimits
      c.copies_failed++;
      if (redirect) {
        c.drops[kDropTargetDown]++;
        v[i] = ActVerdict::stolen;
        w.drop(m, dev.index, DropReason::mirred_target_down);
      }
      continue;
    }
    if (sink) {  // the sink copies into its own pool; a redirect then frees the original
      out[no++] = m;
      if (redirect) v[i] = ActVerdict::stolen;
      continue;
    }
    const uint32_t caplen = cfg.snaplen != 0 && cfg.snaplen < m->pkt_len ? cfg.snaplen : m->pkt_len;
    rte_mbuf* p;
    if (remote) {
      if (!seq_taken) {
        seq = mi.seq.fetch_add(n, std::memory_order_relaxed);
        seq_taken = true;
      }
      p = encapsulate(mi, m, redirect, seq++, caplen);
    } else if (redirect) {
      p = m;
    } else {
      p = rte_pktmbuf_clone(m, m->pool);
      if (p != nullptr && caplen < p->pkt_len) {
        if (p->nb_segs == 1) {
          rte_pktmbuf_trim(p, static_cast<uint16_t>(p->pkt_len - caplen));
        } else {
          rte_mbuf* lin = rte_pktmbuf_copy(m, m->pool, 0, caplen);
          rte_pktmbuf_free(p);
          p = lin;
        }
      }
    }
    if (p == nullptr) {
      c.copies_failed++;
      if (redirect) {
        c.drops[kDropRedirectFailed]++;
        v[i] = ActVerdict::stolen;
        w.drop(m, dev.index, DropReason::mirred_redirect_failed);
      }
      continue;
    }
    if (redirect) v[i] = ActVerdict::stolen;
    if (p != m && !remote) std::memcpy(rte_mbuf_to_priv(p), &md, sizeof(PktMeta));
    if (p != m) SLUICE_TRACE_FORK(w, m, p);  // the copy is traced on its own
    if (redirect && traced(m)) [[unlikely]]
      trace_fate(w, m, TraceFate::stolen, dev.index, "mirred", "redirected by %s",
                 cfg.name.c_str());
    PktMeta& pm = meta(p);
    if (!remote) {
      if (!redirect) pm.flags |= kFlagMirrored;
      pm.flags &= static_cast<uint8_t>(~kFlagsCleared);
      pm.mirror_depth = static_cast<uint8_t>(md.mirror_depth + 1);
      if (target != nullptr) pm.dev = target->index;
      pm.skb_iif = dev.index;
    }
    out[no++] = p;
  }
  if (sink) {
    to_sink(w, mi, dev, out, no, side, c);
    if (redirect)  // moved into the file: consumed, not dropped
      for (uint16_t i = 0; i < no; i++) w.free_later(out[i]);
    return;
  }
  dispatch(w, sys, mi, dev, side, out, no, c);
}

void send_l3(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n) {
  l3::ip_local_out(w, *static_cast<l3::L3*>(ctx), pkts, n);
}

}  // namespace

void act_ingress(Worker& w, Device& dev, void* ctx, rte_mbuf** pkts, uint16_t n,
                 ActVerdict* verdicts) {
  act(w, dev, *static_cast<Mirror*>(ctx), pkts, n, verdicts, Direction::ingress);
}

void act_egress(Worker& w, Device& dev, void* ctx, rte_mbuf** pkts, uint16_t n,
                ActVerdict* verdicts) {
  act(w, dev, *static_cast<Mirror*>(ctx), pkts, n, verdicts, Direction::egress);
}

MirrorSys::MirrorSys(Dataplane& d)
    : dp(d), remote(new RemoteQueue[kMaxWorkers]), backlog(new RemoteQueue[kMaxWorkers]) {}

MirrorSys::~MirrorSys() {
  remove_all();
  for (auto* qs : {remote.get(), backlog.get()}) {
    for (unsigned i = 0; i < kMaxWorkers; i++) {
      if (qs[i].n != 0) rte_pktmbuf_free_bulk(qs[i].pkts, qs[i].n);
      qs[i].n = 0;
    }
  }
}

const Mirror* MirrorSys::find(const std::string& name) const {
  for (auto& m : mirrors)
    if (m->cfg.name == name) return m.get();
  return nullptr;
}

// Remote copies leave through L3; egress→ingress copies are received on
// their target (grouped by device, in order). What that receive mirrors
// again waits for the next poll.
void MirrorSys::poll(Worker& w, void* ctx) {
  auto* sys = static_cast<MirrorSys*>(ctx);
  const unsigned id = w.id % kMaxWorkers;
  rte_mbuf* pkts[kRemoteQueue];
  if (RemoteQueue& q = sys->remote[id]; q.n != 0) {
    uint16_t n = q.n;
    std::memcpy(pkts, q.pkts, n * sizeof(rte_mbuf*));
    q.n = 0;
    for (uint16_t i = 0; i < n; i += kBurst) {
      uint16_t k = static_cast<uint16_t>(std::min<unsigned>(kBurst, n - i));
      if (sys->send_remote != nullptr)
        sys->send_remote(w, sys->send_ctx, pkts + i, k);
      else
        for (uint16_t j = 0; j < k; j++) w.free_later(pkts[i + j]);
    }
  }
  if (RemoteQueue& q = sys->backlog[id]; q.n != 0) {
    uint16_t n = q.n;
    std::memcpy(pkts, q.pkts, n * sizeof(rte_mbuf*));
    q.n = 0;
    uint16_t i = 0;
    while (i < n) {
      uint16_t dev = meta(pkts[i]).dev;
      uint16_t j = i + 1;
      while (j < n && j - i < kBurst && meta(pkts[j]).dev == dev) j++;
      netif_receive(w, pkts + i, static_cast<uint16_t>(j - i));
      i = j;
    }
  }
  w.flush_free();
}

namespace {

// A mirror's settings without where they were written.
bool same_settings(const config::Mirror& a, const config::Mirror& b) {
  return a.name == b.name && a.source == b.source && a.direction == b.direction &&
         a.filter == b.filter && a.redirect == b.redirect && a.snaplen == b.snaplen &&
         a.sample == b.sample && a.to == b.to && a.dev == b.dev && a.at_ingress == b.at_ingress &&
         a.remote == b.remote && a.via == b.via && a.vni == b.vni && a.dst_port == b.dst_port &&
         a.key == b.key && a.session == b.session && a.path == b.path && a.max_bytes == b.max_bytes;
}

}  // namespace

void MirrorSys::build() {
  make(dp.topo.get<Config>(), dp.topo.file, mirrors);
  attach();
}

void MirrorSys::rebuild(const Config& cfg, const std::string& file) {
  // What stays, by name; what is new is built before anything is removed.
  auto running = [&](const config::Mirror& c) -> std::unique_ptr<Mirror>* {
    for (auto& mi : mirrors)
      if (mi && same_settings(mi->cfg, c)) return &mi;
    return nullptr;
  };
  Config fresh;
  for (const config::Mirror& c : cfg.mirrors)
    if (running(c) == nullptr) fresh.mirrors.push_back(c);
  std::vector<std::unique_ptr<Mirror>> built;
  make(fresh, file, built);  // throws: nothing changed yet (sinks of `built` stop with them)
  detach();
  std::vector<std::unique_ptr<Mirror>> next;
  for (const config::Mirror& c : cfg.mirrors) {
    std::unique_ptr<Mirror>* src = running(c);
    if (src == nullptr)
      for (auto& mi : built)
        if (mi && mi->cfg.name == c.name) src = &mi;
    (*src)->cfg.mark = c.mark;
    next.push_back(std::move(*src));
  }
  for (auto& mi : mirrors) {  // removed or changed: their sinks stop
    if (!mi || mi->sink_id == 0) continue;
    if (auto* cm = dp.find_feature<CaptureManager>()) cm->stop(mi->sink_id, true);
  }
  mirrors = std::move(next);
  attach();
}

void MirrorSys::make(const Config& cfg, const std::string& file,
                     std::vector<std::unique_ptr<Mirror>>& out) {
  auto where = [&](const config::Mark& m) { return config::where(file, m); };
  for (const config::Mirror& c : cfg.mirrors) {
    auto mi = std::make_unique<Mirror>();
    mi->cfg = c;
    mi->sys = this;
    std::string wh = where(c.mark) + "mirror '" + c.name + "': ";
    Device* src = dp.net.find(c.source);
    if (src == nullptr) throw std::runtime_error(wh + "no device '" + c.source + "'");
    mi->source = src->index;
    if (!c.filter.empty()) {
      std::string err;
      mi->filter = PacketFilter::compile(c.filter, &err);
      if (!mi->filter) throw std::runtime_error(wh + "filter: " + err);
    }
    switch (c.to) {
      case config::MirrorTarget::dev: {
        Device* t = dp.net.find(c.dev);
        if (t == nullptr) throw std::runtime_error(wh + "no device '" + c.dev + "'");
        mi->target = t->index;
        break;
      }
      case config::MirrorTarget::vxlan:
      case config::MirrorTarget::gre:
      case config::MirrorTarget::erspan: {
        auto* l3 = dp.find_feature<l3::L3>();
        Device* via = dp.net.find(c.via);
        if (l3 == nullptr || via == nullptr)
          throw std::runtime_error(wh + "remote destinations need L3 and a device to leave by");
        uint32_t dst = 0;
        l3::parse_ipv4(c.remote, &dst);
        mi->dst_ip = dst;
        mi->src_ip = l3->addrs.source_for(via->index, dst);
        if (mi->src_ip == 0)
          throw std::runtime_error(wh + "no IPv4 address on " + c.via + " to send from");
        mi->underlay_mtu = via->mtu;
        build_encap(*mi);
        send_remote = send_l3;
        send_ctx = l3;
        break;
      }
      case config::MirrorTarget::pcapng: {
        CaptureOptions o;
        o.dev = c.source;
        o.dir = static_cast<Direction>(c.direction);
        o.path = c.path;
        o.max_bytes = c.max_bytes;
        o.tap = false;
        o.label = "mirror " + c.name + " of " + c.source;
        if (c.snaplen != 0) o.snaplen = c.snaplen;
        std::string err;
        mi->sink_id = dp.feature<CaptureManager>().start(o, &err);
        if (mi->sink_id == 0) throw std::runtime_error(wh + err);
        mi->sink = dp.feature<CaptureManager>().sink(mi->sink_id);
        break;
      }
    }
    out.push_back(std::move(mi));
  }
}

void MirrorSys::attach() {
  if (!poll_added_) dp.add_worker_poll(&MirrorSys::poll, this);
  poll_added_ = true;
  // Actions last, in file order (the priority keeps it on each device).
  int prio = 0;
  for (auto& mi : mirrors) {
    Device* src = dp.net.dev(mi->source);
    if (mi->cfg.direction & 1)
      mi->actions[0] = dp.net.add_action(*src, Direction::ingress, act_ingress, mi.get(), prio);
    if (mi->cfg.direction & 2)
      mi->actions[1] = dp.net.add_action(*src, Direction::egress, act_egress, mi.get(), prio);
    prio++;
    spdlog::info("mirror {}: {} {} {}{} -> {}", mi->cfg.name, mi->cfg.source,
                 direction_name(static_cast<Direction>(mi->cfg.direction)),
                 mi->cfg.redirect ? "redirect" : "mirror",
                 mi->cfg.filter.empty() ? "" : " \"" + mi->cfg.filter + "\"",
                 config::mirror_target_name(mi->cfg.to));
  }
}

void MirrorSys::detach() {
  for (auto& mi : mirrors) {
    for (uint32_t& id : mi->actions) {
      if (id != 0) dp.net.remove_action(id);
      id = 0;
    }
  }
}

// The actions go first (each removal waits for a grace period: no worker
// is inside one afterwards), then the sinks.
void MirrorSys::remove_all() {
  detach();
  for (auto& mi : mirrors) {
    if (mi->sink_id != 0)
      if (auto* cm = dp.find_feature<CaptureManager>()) cm->stop(mi->sink_id, true);
    mi->sink_id = 0;
    mi->sink = nullptr;
  }
}

void MirrorSys::clear_stats() {
  for (auto& mi : mirrors) {
    Counters t;
    for (const WorkerSlot& s : mi->slots) t += s.c;
    mi->base = t;
  }
}

void setup(Dataplane& dp) {
  if (dp.topo.get<Config>().mirrors.empty()) return;
  dp.feature<MirrorSys>().build();
}

void shutdown(Dataplane& dp) {
  if (auto* s = dp.find_feature<MirrorSys>()) s->remove_all();
}

void clear_stats(Dataplane& dp) {
  if (auto* s = dp.find_feature<MirrorSys>()) s->clear_stats();
}

}  // namespace sluice::mirror
