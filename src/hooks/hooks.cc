#include "hooks/hooks.hh"

#include <algorithm>
#include <array>
#include <string>
#include <cstddef>
#include <cstring>

#include <dlfcn.h>

#include <rte_lcore.h>
#include <rte_ring.h>

#include "core/dataplane.hh"
#include "core/rcu.hh"
#include "hooks/rules.hh"

namespace sluice::hooks {

namespace {
constexpr const char* kPointNames[kNumPoints] = {
    "ipv4/pre_routing",  "ipv4/local_in",     "ipv4/forward",        "ipv4/local_out",
    "ipv4/post_routing", "ipv6/pre_routing",  "ipv6/local_in",       "ipv6/forward",
    "ipv6/local_out",    "ipv6/post_routing", "bridge/pre_routing",  "bridge/local_in",
    "bridge/forward",    "bridge/local_out",  "bridge/post_routing", "arp/in",
    "arp/out",           "arp/forward"};

struct PriName {
  const char* name;
  int value;
};
// nf_ip_hook_priorities (§5.2); ipv6 and arp use the same names here.
constexpr PriName kInetPri[] = {{"first", INT_MIN},
                                {"raw_before_defrag", -450},
                                {"conntrack_defrag", -400},
                                {"raw", -300},
                                {"selinux_first", -225},
                                {"conntrack", -200},
                                {"mangle", -150},
                                {"nat_dst", -100},
                                {"filter", 0},
                                {"security", 50},
                                {"nat_src", 100},
                                {"selinux_last", 225},
                                {"conntrack_helper", 300},
                                {"conntrack_confirm", INT_MAX},
                                {"last", INT_MAX}};
// nf_br_hook_priorities (§4.7).
constexpr PriName kBrPri[] = {
    {"first", INT_MIN},     {"nat_dst_bridged", -300}, {"filter_bridged", -200}, {"brnf", 0},
    {"nat_dst_other", 100}, {"filter_other", 200},     {"nat_src", 300},         {"last", INT_MAX}};
}  // namespace

const char* point_name(unsigned p) {
  return p < kNumPoints ? kPointNames[p] : "?";
}

bool parse_point(const std::string& s, Point* out) {
  for (unsigned i = 0; i < kNumPoints; i++)
    if (s == kPointNames[i]) {
      *out = static_cast<Point>(i);
      return true;
    }
  return false;
}

bool parse_priority(const std::string& s, bool bridge, int* out) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  if (i < s.size() &&
      std::all_of(s.begin() + i, s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (s.size() - i > 10) return false;
    long long v = std::stoll(s);
    if (v < INT_MIN || v > INT_MAX) return false;
    *out = static_cast<int>(v);
    return true;
  }
  if (bridge) {
    for (auto& p : kBrPri)
      if (s == p.name) return *out = p.value, true;
  } else {
    for (auto& p : kInetPri)
      if (s == p.name) return *out = p.value, true;
  }
  return false;
}

namespace {
// The queue state of a queued packet, kept in its metadata scratch.
void put_state(const Queued& q) {
  static_assert(sizeof(Queued) - offsetof(Queued, id) <= sizeof(PktMeta::user));
  std::memcpy(meta(q.m).user, &q.id, sizeof(Queued) - offsetof(Queued, id));
}
Queued get_state(rte_mbuf* m) {
  Queued q;
  q.m = m;
  std::memcpy(&q.id, meta(m).user, sizeof(Queued) - offsetof(Queued, id));
  return q;
}
}  // namespace

Registry::Registry(Dataplane& d)
    : dp(d),
      ctr_(new EntryCounters[kMaxWorkers * kMaxEntries]()),
      base_(new EntryCounters[kMaxEntries]()) {
  for (unsigned i = kMaxEntries; i-- > 0;) free_slots_.push_back(static_cast<uint16_t>(i));
  static std::atomic<unsigned> seq{0};
  unsigned me = seq++;
  char name[32];
  for (unsigned w = 0; w < kMaxWorkers; w++) {
    std::snprintf(name, sizeof name, "hkri%u_%u", me, w);
    reinject_[w] = rte_ring_create(name, 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
  }
  for (unsigned q = 0; q < kNumQueues; q++) set_queue_len(static_cast<uint16_t>(q), 1024);
  dp.add_worker_poll([](Worker& w, void* ctx) { static_cast<Registry*>(ctx)->poll(w); }, this);
  dp.add_clear_stats([this]() { clear_stats(); });
}

Registry::~Registry() {
  rule_lists.clear();
  auto drain = [](rte_ring* r) {
    if (r == nullptr) return;
    void* o;
    while (rte_ring_dequeue(r, &o) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(o));
    rte_ring_free(r);
  };
  for (auto& q : queues_) drain(q.ring);
  for (auto* r : reinject_) drain(r);
  for (auto& l : lists_) delete l.load();
  for (auto& [path, h] : plugins) dlclose(h);
}

bool Registry::set_queue_len(uint16_t q, unsigned len) {
  if (q >= kNumQueues || len == 0) return false;
  if (queues_[q].ring != nullptr && rte_ring_count(queues_[q].ring) != 0) return false;
  static std::atomic<unsigned> seq{0};
  char name[32];
  std::snprintf(name, sizeof name, "hkq%u_%u", q, seq++);
  unsigned sz = 2;
  while (sz < len + 1) sz <<= 1;
  rte_ring* r = rte_ring_create(name, sz, SOCKET_ID_ANY, RING_F_SC_DEQ);
  if (r == nullptr) return false;
  if (queues_[q].ring != nullptr) rte_ring_free(queues_[q].ring);
  queues_[q].ring = r;
  return true;
}

unsigned Registry::queue_len(uint16_t q) const {
  return q < kNumQueues && queues_[q].ring != nullptr ? rte_ring_get_capacity(queues_[q].ring) : 0;
}

unsigned Registry::waiting(uint16_t q) const {
  return q < kNumQueues && queues_[q].ring != nullptr ? rte_ring_count(queues_[q].ring) : 0;
}

uint32_t Registry::add(Point p, int priority, std::string name, Fn fn, void* priv, Owner owner,
                       Place place) {
  std::lock_guard<std::mutex> g(mu_);
  if (p >= kNumPoints || free_slots_.empty()) return 0;
  auto& slot = lists_[p];
  auto* next = new List;
  if (const List* cur = slot.load()) next->entries = cur->entries;
  if (next->entries.size() >= kMaxPerPoint) {
    delete next;
    return 0;
  }
  uint32_t id = next_id_++;
  uint16_t cs = free_slots_.back();
  free_slots_.pop_back();
  for (unsigned w = 0; w < kMaxWorkers; w++) ctr_[w * kMaxEntries + cs] = EntryCounters{};
  base_[cs] = EntryCounters{};
  // 6.x (nf_hook_entries_grow): before the first entry whose priority is >=
  // ours, so equal priorities run newest first. FIFO mode, and after_equals:
  // before the first strictly greater one (2.6.32 nf_register_hook).
  const bool after = fifo_equal_ || place == Place::after_equals;
  auto it = std::find_if(next->entries.begin(), next->entries.end(), [&](const Entry& e) {
    return after ? e.priority > priority : e.priority >= priority;
  });
  next->entries.insert(it, Entry{priority, id, cs, fn, priv, std::move(name), owner});
  dp.rcu.publish(slot, static_cast<const List*>(next));
  return id;
}

bool Registry::remove(uint32_t id) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& slot : lists_) {
    const List* cur = slot.load();
    if (cur == nullptr) continue;
    auto it = std::find_if(cur->entries.begin(), cur->entries.end(),
                           [&](const Entry& e) { return e.id == id; });
    if (it == cur->entries.end()) continue;
    uint16_t cs = it->slot;
    const List* next = nullptr;
    if (cur->entries.size() > 1) {
      auto* n = new List(*cur);
      n->entries.erase(n->entries.begin() + (it - cur->entries.begin()));
      next = n;
    }
    dp.rcu.publish(slot, next);  // after the grace period nobody counts on cs
    free_slots_.push_back(cs);
    return true;
  }
  return false;
}

EntryCounters Registry::counters(uint16_t slot) const {
  EntryCounters s = raw_counters(slot);
  const EntryCounters& b = base_[slot];
  s.hits -= b.hits;
  s.drops -= b.drops;
  s.queued -= b.queued;
  s.stolen -= b.stolen;
  return s;
}

void Registry::clear_stats() {
  for (uint16_t slot = 0; slot < kMaxEntries; slot++) base_[slot] = raw_counters(slot);
  for (uint16_t q = 0; q < kNumQueues; q++) {
    qbase_[q] = QueueStats{};
    qbase_[q] = queue_stats(q);
  }
  for (auto& rl : rule_lists) rl->clear_stats();
}

EntryCounters Registry::raw_counters(uint16_t slot) const {
  EntryCounters s{};
  for (unsigned w = 0; w < kMaxWorkers; w++) {
    const EntryCounters& c = ctr_[w * kMaxEntries + slot];
    s.hits += c.hits;
    s.drops += c.drops;
    s.queued += c.queued;
    s.stolen += c.stolen;
  }
  return s;
}

bool Registry::enqueue(Worker& w, const State& st, const Entry& e, rte_mbuf* m, uint16_t q) {
  Queue& Q = queues_[q];
  // The state goes into the scratch of the stage that called the hooks: on a
  // full ring (fail-open) that stage gets its scratch back.
  uint64_t saved[4];
  std::memcpy(saved, meta(m).user, sizeof saved);
  put_state(Queued{m, Q.next_id.fetch_add(1, std::memory_order_relaxed), q, st.point,
                   static_cast<uint8_t>(w.id % kMaxWorkers), st.in, out_of(st, 0), e.id, e.priority,
                   Queued::kResume});
  if (rte_ring_mp_enqueue(Q.ring, m) != 0) {
    std::memcpy(meta(m).user, saved, sizeof saved);
    return false;
  }
  Q.queued.fetch_add(1, std::memory_order_relaxed);
  return true;
}

Registry::QueueResult Registry::queue(Worker& w, const State& st, const Entry& e, rte_mbuf* m,
                                      uint32_t v, uint16_t drop_dev) {
  const uint16_t q = static_cast<uint16_t>(v >> 16);
  const bool bypass = v & SLUICE_QUEUE_BYPASS;
  EntryCounters& c = ctr(w.id, e.slot);
  DropReason why = DropReason::nfqueue_nolistener;
  if (q < kNumQueues) {
    Queue& Q = queues_[q];
    if (!Q.bound.load(std::memory_order_relaxed)) {
      Q.nolistener.fetch_add(1, std::memory_order_relaxed);
    } else {
      // Before the ring: once queued, the consumer owns it. A failed enqueue overrides it.
      SLUICE_TRACE_FATE(w, m, TraceFate::queued, drop_dev, point_name(st.point), "%u", q);
      if (enqueue(w, st, e, m, q)) {
        c.queued++;
        return QueueResult::queued;
      }
      Q.full.fetch_add(1, std::memory_order_relaxed);
      why = DropReason::nfqueue_full;
    }
    if (bypass) {
      Q.bypassed.fetch_add(1, std::memory_order_relaxed);
      return QueueResult::bypass;
    }
  } else if (bypass) {
    return QueueResult::bypass;
  }
  c.drops++;
  w.drop(m, drop_dev, why);
  return QueueResult::dropped;
}

Registry& registry(Dataplane& dp) {
  return dp.feature<Registry>();
}

namespace {

// Where a resumed walk goes on: after the entry that queued the packet, or,
// when that entry is gone (a reload), after every entry of its priority.
size_t resume_index(const List& l, uint32_t after_id, int after_pri) {
  auto it = std::find_if(l.entries.begin(), l.entries.end(),
                         [&](const Entry& e) { return e.id == after_id; });
  if (it != l.entries.end()) return static_cast<size_t>(it - l.entries.begin()) + 1;
  size_t start = 0;
  while (start < l.entries.size() && l.entries[start].priority <= after_pri) start++;
  return start;
}

// After one entry: the active survivors [0, k) stay, then come the packets
// it stopped (held[0, nh)), then those stopped earlier ([active, active +
// nstopped)). Returns the new count.
uint16_t regroup(rte_mbuf** pkts, uint16_t* idx, uint16_t k, uint16_t active, uint16_t nstopped,
                 rte_mbuf** held, uint16_t* held_idx, uint16_t nh) {
  uint16_t m = k;
  if (nh != 0) {
    for (uint16_t i = 0; i < nstopped; i++) {  // make room: they may overlap [k, k + nh)
      held[nh + i] = pkts[active + i];
      held_idx[nh + i] = idx[active + i];
    }
    for (uint16_t i = 0; i < nh + nstopped; i++) {
      pkts[m] = held[i];
      idx[m++] = held_idx[i];
    }
    return m;
  }
  for (uint16_t i = 0; i < nstopped; i++) {
    pkts[m] = pkts[active + i];
    idx[m++] = idx[active + i];
  }
  return m;
}

// show runtime: one stage per hook point ("hook ipv4/forward").
// Registered at load (never on a worker: registering allocates).
const std::array<StageId, kNumPoints> kHookStages = [] {
  std::array<StageId, kNumPoints> a{};
  for (unsigned p = 0; p < kNumPoints; p++)
    a[p] = stage_register(std::string("hook ") + point_name(p), 420);
  return a;
}();

inline StageId hook_stage(unsigned point) {
  return point < kNumPoints ? kHookStages[point] : kStageNone;
}

const char* verdict_name(uint32_t v) {
  switch (v & 0xff) {
    case SLUICE_ACCEPT:
      return "NF_ACCEPT";
    case SLUICE_DROP:
      return "NF_DROP";
    case SLUICE_QUEUE:
      return "NF_QUEUE";
    case SLUICE_STOP:
      return "NF_STOP";
    case kBroute:
      return "broute: PASS up the port";
    default:
      return "NF_STOLEN";
  }
}

// Puts the survivors back in their original order (idx: original indexes).
void restore_order(rte_mbuf** pkts, uint16_t* idx, uint16_t n) {
  uint16_t ord[kBurst];
  for (uint16_t i = 0; i < n; i++) ord[i] = i;
  std::sort(ord, ord + n, [&](uint16_t a, uint16_t b) { return idx[a] < idx[b]; });
  rte_mbuf* tmp[kBurst];
  uint16_t ti[kBurst];
  for (uint16_t i = 0; i < n; i++) {
    tmp[i] = pkts[ord[i]];
    ti[i] = idx[ord[i]];
  }
  std::memcpy(pkts, tmp, n * sizeof(rte_mbuf*));
  std::memcpy(idx, ti, n * sizeof(uint16_t));
}

}  // namespace

uint16_t Registry::run_list(Worker& w, const List& l, const State& st, rte_mbuf** pkts, uint16_t n,
                            uint16_t drop_dev, uint16_t* kept_idx, Brouted* brouted,
                            uint32_t after_id, int after_pri) {
  const size_t start = after_id != 0 ? resume_index(l, after_id, after_pri) : 0;
  StageScope scope(w.runtime, hook_stage(st.point), n);
  EntryCounters* wc = &ctr_[(w.id % kMaxWorkers) * kMaxEntries];
  // Common case: every entry accepts the whole burst. Then pkts is untouched,
  // the caller's State (and its outs) serves every entry, and nothing is
  // compacted or reordered. `whole` stays true until an entry answers
  // anything but accept for some packet; from then on idx[i] is the original
  // index of pkts[i], and the packets that saw STOP sit at the end
  // (`nstopped` of them): entries run only on the active prefix.
  bool whole = true, any_stop = false;
  uint16_t nstopped = 0;
  uint16_t idx[kBurst];
  uint16_t outs[kBurst];
  State s = st;
  for (size_t ei = start; ei < l.entries.size(); ei++) {
    const uint16_t active = static_cast<uint16_t>(n - nstopped);
    if (active == 0) break;
    const Entry& e = l.entries[ei];
    uint32_t v[kBurst];
    e.fn(w, s, e.priv, pkts, active, v);
    EntryCounters& c = wc[e.slot];
    c.hits += active;
    if (SLUICE_TRACE_LIVE(w)) [[unlikely]]  // one flag per burst, not one per packet
      for (uint16_t i = 0; i < active; i++)
        if (traced(pkts[i]))
          trace_rec(w, pkts[i], point_name(st.point), meta(pkts[i]).dev, verdict_name(v[i]), kNoDev,
                    "entry %s (priority %d)", e.name.c_str(), e.priority);
    uint32_t other = 0;
    for (uint16_t i = 0; i < active; i++) other |= (v[i] & 0xff) ^ SLUICE_ACCEPT;
    if (other == 0) continue;
    if (whole) {
      for (uint16_t i = 0; i < n; i++) idx[i] = i;
      whole = false;
    }
    uint16_t k = 0;
    rte_mbuf* held[kBurst];
    uint16_t held_idx[kBurst];
    uint16_t nh = 0;
    for (uint16_t i = 0; i < active; i++) {
      const uint16_t dd = drop_dev != kNoDev ? drop_dev : meta(pkts[i]).dev;
      switch (v[i] & 0xff) {
        case SLUICE_ACCEPT:
          pkts[k] = pkts[i];
          idx[k++] = idx[i];
          break;
        case SLUICE_STOP:
          held[nh] = pkts[i];
          held_idx[nh++] = idx[i];
          break;
        case SLUICE_DROP:
          c.drops++;
          SLUICE_TRACE_DETAIL(w, pkts[i], "NF_DROP by %s entry %s", point_name(st.point),
                              e.name.c_str());
          w.drop(pkts[i], dd, DropReason::netfilter_drop);
          break;
        case SLUICE_QUEUE: {
          State one = s;
          one.outs = nullptr;
          one.out = out_of(s, i);
          if (queue(w, one, e, pkts[i], v[i], s.in != kNoDev ? s.in : dd) == QueueResult::bypass) {
            pkts[k] = pkts[i];
            idx[k++] = idx[i];
          }
          break;
        }
        case kBroute:
          if (brouted != nullptr) {
            brouted->pkts[brouted->n++] = pkts[i];
          } else {
            pkts[k] = pkts[i];
            idx[k++] = idx[i];
          }
          break;
        default:  // STOLEN (and REPEAT from a hook function: treated as stolen, as 6.x)
          c.stolen++;
          break;
      }
    }
    // The active survivors [0, k), then the newly stopped, then the earlier
    // stopped (moved down from [active, n)).
    any_stop = any_stop || nh != 0;
    n = regroup(pkts, idx, k, active, nstopped, held, held_idx, nh);
    nstopped = static_cast<uint16_t>(n - k);
    if (st.outs != nullptr) {  // the next entries see the outs of the active prefix
      for (uint16_t i = 0; i < k; i++) outs[i] = st.outs[idx[i]];
      s.outs = outs;
    }
  }
  if (whole) {
    if (kept_idx != nullptr)
      for (uint16_t i = 0; i < n; i++) kept_idx[i] = i;
    return n;
  }
  // Keep the original order of the survivors (only STOP moves packets back).
  if (any_stop && n > 1) restore_order(pkts, idx, n);
  if (kept_idx != nullptr) std::memcpy(kept_idx, idx, n * sizeof(uint16_t));
  return n;
}

bool Registry::bind(uint16_t q, bool b) {
  if (q >= kNumQueues) return false;
  bool was = queues_[q].bound.exchange(b);
  return !(b && was);
}

unsigned Registry::read(uint16_t q, Queued* out, unsigned n) {
  if (q >= kNumQueues) return 0;
  void* objs[64];
  unsigned got = rte_ring_sc_dequeue_burst(queues_[q].ring, objs, std::min(n, 64u), nullptr);
  for (unsigned i = 0; i < got; i++) out[i] = get_state(static_cast<rte_mbuf*>(objs[i]));
  return got;
}

void Registry::verdict(const Queued& qp, uint32_t v) {
  if (qp.queue < kNumQueues) queues_[qp.queue].answered.fetch_add(1, std::memory_order_relaxed);
  const bool ctl = rte_lcore_id() == rte_get_main_lcore();
  switch (v & 0xff) {
    case SLUICE_DROP:
      if (ctl) {  // the control thread counts its own drops
        dp.ctl_drop(qp.m, qp.in != kNoDev ? qp.in : qp.out, DropReason::netfilter_drop);
        return;
      }
      [[fallthrough]];  // any other thread: the worker drops and counts it
    case SLUICE_ACCEPT:
    case SLUICE_STOP:
    case SLUICE_REPEAT: {
      Queued r = qp;
      if ((v & 0xff) == SLUICE_STOP) r.resume_after = UINT32_MAX;  // skip the rest
      r.action = (v & 0xff) == SLUICE_REPEAT ? Queued::kRepeat
                 : (v & 0xff) == SLUICE_DROP ? Queued::kDrop
                                             : Queued::kResume;
      put_state(r);
      if (rte_ring_mp_enqueue(reinject_[r.worker % kMaxWorkers], r.m) != 0) {
        if (qp.queue < kNumQueues)
          queues_[qp.queue].reinject_full.fetch_add(1, std::memory_order_relaxed);
        if (ctl)
          dp.ctl_drop(qp.m, qp.in != kNoDev ? qp.in : qp.out, DropReason::nfqueue_full);
        else
          rte_pktmbuf_free(qp.m);  // counted in reinject_full only: no worker to count it
      }
      return;
    }
    default:  // stolen by the consumer: it keeps the mbuf
      return;
  }
}

void Registry::verdict_pkt(rte_mbuf* m, uint32_t v) {
  verdict(get_state(m), v);
}

bool Registry::run_on_worker(Point p, rte_mbuf* m, uint16_t in, uint16_t out, unsigned worker) {
  const uint8_t wk = static_cast<uint8_t>(worker % kMaxWorkers);
  put_state(
      Queued{m, 0, kNumQueues, static_cast<uint8_t>(p), wk, in, out, 0, INT_MIN, Queued::kResume});
  if (rte_ring_mp_enqueue(reinject_[wk], m) == 0) return true;
  rte_pktmbuf_free(m);
  return false;
}

unsigned Registry::drain() {
  unsigned n = 0;
  auto one = [&](rte_ring* r) {
    void* o;
    while (r != nullptr && rte_ring_dequeue(r, &o) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(o));
      n++;
    }
  };
  for (auto& q : queues_) one(q.ring);
  for (auto* r : reinject_) one(r);
  return n;
}

void Registry::set_okfn(Point p, Okfn fn, void* ctx) {
  if (p < kNumPoints) okfn_[p] = OkfnSlot{fn, ctx};
}

void Registry::poll(Worker& w) {
  rte_ring* r = reinject_[w.id % kMaxWorkers];
  if (r == nullptr || rte_ring_empty(r)) return;
  void* objs[kBurst];
  unsigned got = rte_ring_sc_dequeue_burst(r, objs, kBurst, nullptr);
  for (unsigned i = 0; i < got; i++) {
    Queued qp = get_state(static_cast<rte_mbuf*>(objs[i]));
    State st{qp.point, static_cast<uint16_t>(w.id), qp.in, qp.out, nullptr};
    const uint16_t dd = qp.in != kNoDev ? qp.in : qp.out;
    rte_mbuf* mm[kBurst] = {qp.m};
    uint16_t n = 1;
    if (qp.action == Queued::kDrop) {
      w.drop(qp.m, dd, DropReason::netfilter_drop);
      continue;
    }
    const List* l = list(qp.point);
    if (l != nullptr && qp.resume_after != UINT32_MAX) {
      uint32_t after = qp.resume_after;
      int after_pri = qp.resume_priority;
      if (qp.action == Queued::kRepeat) {  // start at the queueing entry: after the one before it
        auto it = std::find_if(l->entries.begin(), l->entries.end(),
                               [&](const Entry& e) { return e.id == after; });
        if (it != l->entries.end()) {
          after = it == l->entries.begin() ? 0 : std::prev(it)->id;
          after_pri = INT_MIN;
        }
      }
      n = run_list(w, *l, st, mm, 1, dd, nullptr, nullptr, after, after_pri);
    }
    if (n == 0) continue;
    const OkfnSlot& ok = okfn_[qp.point];
    if (ok.fn != nullptr)
      ok.fn(w, st, mm, 1, ok.ctx);
    else  // nobody continues this point (its feature is not running)
      w.drop(mm[0], dd, DropReason::nfqueue_nolistener);
  }
}

Registry::QueueStats Registry::queue_stats(uint16_t q) const {
  const Queue& Q = queues_[q];
  const QueueStats& b = qbase_[q];
  return QueueStats{Q.queued.load() - b.queued,         Q.full.load() - b.full,
                    Q.nolistener.load() - b.nolistener, Q.bypassed.load() - b.bypassed,
                    Q.answered.load() - b.answered,     Q.reinject_full.load() - b.reinject_full};
}

}  // namespace sluice::hooks
