// Netfilter-style hooks (net/netfilter/core.c): at each hook point a
// priority-ordered list of hook entries (rule lists, plugins, C++ callbacks),
// run burst-wise with one verdict per packet. One engine for every family:
// L3 (src/l3) and the bridge (src/bridge) call Registry::run at their points
// and continue queued packets through the points' okfns (set_okfn).
// Spec: ../shared/spec/linux-rx.md §4.7, §5. Docs: docs/hooks.md.
//
// Points: ipv4|ipv6|bridge / pre_routing, local_in, forward, local_out,
//   post_routing; arp / in, out, forward (sluice_point in include/sluice/hook.hh).
// Order: ascending priority; equal priorities newest first (LIFO, Linux ≥ 4.14,
//   nf_hook_entries_grow); Registry::set_fifo_equal(true) gives the 2.6.32/3.10
//   order (FIFO among equals). At most kMaxPerPoint (1024, MAX_HOOK_COUNT) entries.
// Verdicts: accept (next entry), drop (freed, netfilter_drop + the entry's
//   drops), stolen (owned by the hook), queue (to a bounded queue read by a
//   consumer; no consumer or a full ring: drop, or the next entry with the
//   bypass flag — NFQUEUE fail-open), stop (accept, skip the rest of the point);
//   kBroute (daemon entries only, bridge/pre_routing: out of the bridge).
// Each list is an immutable vector published under RCU (Rcu::publish);
//   workers read it without locks, an empty point costs one load.
// Drop reasons: netfilter_drop, nfqueue_full, nfqueue_nolistener.
// Counters: per entry and worker: hits, drops, queued, stolen.
// CLI: show hooks [POINT], hooks reload [FILE] (src/hooks/setup.cc); queue
//   bind|unbind|read|verdict, show queues (src/hooks/queue_cli.cc).
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <rte_mbuf.h>

#include "core/meta.hh"
#include "core/worker.hh"
#include "sluice/hook.hh"

struct rte_ring;

namespace sluice::hooks {
class RuleList;
}
namespace sluice {
class Dataplane;
class Rcu;
}  // namespace sluice

namespace sluice::hooks {

using Point = sluice_point;
inline constexpr unsigned kNumPoints = SLUICE_POINT_COUNT;
inline constexpr unsigned kMaxPerPoint = 1024;  // MAX_HOOK_COUNT
inline constexpr unsigned kMaxEntries = 1024;   // counter slots over all points
inline constexpr unsigned kMaxWorkers = 64;
inline constexpr unsigned kNumQueues = 16;

const char* point_name(unsigned p);  // "ipv4/forward"
bool parse_point(const std::string& s, Point* out);
// Names of §5.2 (ipv4/ipv6/arp) and §4.7 (bridge): "filter", "nat_dst", …, or an integer.
bool parse_priority(const std::string& s, bool bridge, int* out);

using State = sluice_hook_state;

// The one verdict beyond the plugin ABI's sluice_verdict, for hook functions
// inside the daemon: ebtables -t broute "DROP" (Linux: the
// br_netfilter_broute flag). At bridge/pre_routing the frame leaves the
// walk and the bridge and goes up the input port's own stack (Registry::run
// with a Brouted); anywhere else it counts as SLUICE_ACCEPT.
inline constexpr uint32_t kBroute = 0x80;  // outside the ABI's NF_* values (0..5)

inline uint16_t out_of(const State& st, uint16_t i) {
  return st.outs ? st.outs[i] : st.out;
}

// A hook function inside the daemon. Writes verdicts[0..n).
using Fn = void (*)(Worker& w, const State& st, void* priv, rte_mbuf** pkts, uint16_t n,
                    uint32_t* verdicts);

// internal: a step of the daemon itself (br_nf_forward_arp); it runs and
// counts like any entry, `show hooks` leaves it out.
enum class Owner : uint8_t { rules, plugin, builtin, internal };

struct Entry {
  int priority;
  uint32_t id;    // > 0
  uint16_t slot;  // counter slot
  Fn fn;
  void* priv;
  std::string name;
  Owner owner;
};
struct List {
  std::vector<Entry> entries;  // run order
};

struct EntryCounters {
  uint64_t hits, drops, queued, stolen;
};

// A queued packet (nfqueue) as a consumer sees it: the packet, where its walk
// stopped, and how to continue it once the consumer answers. While queued,
// this state lives in the mbuf's metadata scratch (PktMeta::user), so queueing
// allocates nothing; read() hands out copies.
struct Queued {
  rte_mbuf* m;
  uint32_t id;  // packet id, increasing per queue
  uint16_t queue;
  uint8_t point;
  uint8_t worker;  // the worker that queued it (and resumes it)
  uint16_t in, out;
  uint32_t resume_after;  // entry id that queued it (UINT32_MAX: skip the rest)
  int resume_priority;
  uint8_t action;  // set by verdict(): kResume, kRepeat (the queueing entry again), kDrop
  static constexpr uint8_t kResume = 0, kRepeat = 1, kDrop = 2;
};
static_assert(sizeof(Queued) - sizeof(rte_mbuf*) <= sizeof(PktMeta::user),
              "the queue state must fit the metadata scratch");

// Continuation of a point (the okfn of NF_HOOK): takes packets accepted by
// the whole chain after a queue verdict, one call per packet, on the worker
// that queued it (Registry::poll). st.in/st.out are the devices of the walk.
using Okfn = void (*)(Worker& w, const State& st, rte_mbuf** pkts, uint16_t n, void* ctx);

class Registry {
 public:
  explicit Registry(Dataplane& dp);
  ~Registry();

  Dataplane& dp;

  // Where a new entry goes among those of its priority: by the registry's
  // rule (newest first, or FIFO), or after all of them (a step that must see
  // what its peers let through, as if registered before them: br_nf_forward_arp).
  enum class Place : uint8_t { by_order, after_equals };
  // Control thread (or tests). Returns an id for remove(), 0 if the point is full.
  uint32_t add(Point p, int priority, std::string name, Fn fn, void* priv, Owner owner,
               Place place = Place::by_order);
  bool remove(uint32_t id);
  const List* list(unsigned p) const { return lists_[p].load(std::memory_order_acquire); }
  void set_fifo_equal(bool fifo) { fifo_equal_ = fifo; }

  // Frames kBroute verdicts took out of a walk.
  struct Brouted {
    uint16_t n = 0;
    rte_mbuf* pkts[kBurst];
  };
  // Runs point p over pkts[0..n): survivors are compacted into pkts (the
  // return value is their count); kept_idx (optional) receives each
  // survivor's original index. Packets a drop verdict drops are freed and
  // counted on drop_dev (kNoDev: the packet's own device), those a queue
  // verdict drops (no consumer, a full ring) on st.in when the walk has an
  // input device, else the same; stolen and queued ones leave the vector.
  // brouted (optional): where kBroute verdicts go; without it kBroute is accept.
  uint16_t run(Worker& w, const State& st, rte_mbuf** pkts, uint16_t n, uint16_t drop_dev,
               uint16_t* kept_idx = nullptr, Brouted* brouted = nullptr) {
    const List* l = list(st.point);
    if (l == nullptr) return n;
    return run_list(w, *l, st, pkts, n, drop_dev, kept_idx, brouted, 0, INT_MIN);
  }

  EntryCounters counters(uint16_t slot) const;  // since the last clear_stats()
  EntryCounters raw_counters(uint16_t slot) const;
  // `clear stats`: baselines for entries, queues and rule hits (control thread).
  void clear_stats();
  EntryCounters& ctr(unsigned worker, uint16_t slot) {
    return ctr_[(worker % kMaxWorkers) * kMaxEntries + slot];
  }

  // What setup() made (src/hooks/setup.cc): rule lists by config order, plugins.
  std::vector<std::unique_ptr<class RuleList>> rule_lists;
  struct PluginHook {
    sluice_hook_fn fn;
    void* priv;
  };
  std::vector<std::unique_ptr<PluginHook>> plugin_hooks;
  std::vector<std::pair<std::string, void*>> plugins;  // path, dlopen handle

  // ---- queues (nfnetlink_queue) ----
  // A consumer binds to a queue; without one, queue verdicts drop (or bypass).
  // Unbinding does not touch packets already queued: read() still returns them.
  // bind(q, true) fails (false) when q is bad or already bound: one consumer per queue.
  bool bind(uint16_t q, bool bound);
  bool bound(uint16_t q) const { return q < kNumQueues && queues_[q].bound.load(); }
  // Ring size of queue q (rounded up to a power of two minus one); only while
  // nothing is queued on it (start-up, tests). Returns false otherwise.
  bool set_queue_len(uint16_t q, unsigned len);
  unsigned queue_len(uint16_t q) const;
  unsigned waiting(uint16_t q) const;  // queued, not read yet
  // Consumer side (one thread per queue at a time): up to n queued packets.
  unsigned read(uint16_t q, Queued* out, unsigned n);
  // The answer (any thread): accept/stop/repeat continue on the worker that
  // queued the packet (accept: the rest of the chain, then the point's okfn;
  // stop: the okfn; repeat: the queueing entry again), drop frees
  // (netfilter_drop), stolen: the consumer owns the mbuf now.
  void verdict(const Queued& qp, uint32_t verdict);
  // The same for a packet read earlier, by its mbuf (the state is in its metadata).
  void verdict_pkt(rte_mbuf* m, uint32_t verdict);
  // A queue verdict v given by entry e to packet m (one packet; st.out is
  // its output device): queued, let through (fail-open: no consumer or a
  // full ring with the bypass flag) or dropped (freed and counted on drop_dev).
  enum class QueueResult : uint8_t { queued, bypass, dropped };
  QueueResult queue(Worker& w, const State& st, const Entry& e, rte_mbuf* m, uint32_t v,
                    uint16_t drop_dev);
  void set_okfn(Point p, Okfn fn, void* ctx);
  // The okfns of consecutive points from `first` (e.g. the five of a family).
  void set_okfns(Point first, std::initializer_list<Okfn> fns, void* ctx) {
    unsigned p = first;
    for (Okfn fn : fns) set_okfn(static_cast<Point>(p++), fn, ctx);
  }
  // NF_HOOK for a packet made off the workers (the control thread's ARP
  // probes): worker `worker` runs point p's whole chain on it, then the
  // point's okfn. False (and m freed) when that worker's ring is full.
  bool run_on_worker(Point p, rte_mbuf* m, uint16_t in, uint16_t out, unsigned worker);
  bool has_okfn(Point p) const { return p < kNumPoints && okfn_[p].fn != nullptr; }
  // Worker: finishes the packets answered with accept/stop (once per loop;
  // registered as a worker poll by the constructor when workers exist).
  void poll(Worker& w);
  // Frees what queues and resume rings still hold (shutdown, workers stopped).
  unsigned drain();
  struct QueueStats {
    uint64_t queued, full, nolistener, bypassed, answered, reinject_full;
  };
  QueueStats queue_stats(uint16_t q) const;

 private:
  uint16_t run_list(Worker& w, const List& l, const State& st, rte_mbuf** pkts, uint16_t n,
                    uint16_t drop_dev, uint16_t* kept_idx, Brouted* brouted, uint32_t after_id,
                    int after_pri);
  struct Queue {
    rte_ring* ring = nullptr;  // rte_mbuf* (MP/SC), the state in the metadata
    std::atomic<bool> bound{false};
    std::atomic<uint32_t> next_id{1};
    std::atomic<uint64_t> queued{0}, full{0}, nolistener{0}, bypassed{0}, answered{0},
        reinject_full{0};
  };
  Queue queues_[kNumQueues];
  QueueStats qbase_[kNumQueues] = {};
  rte_ring* reinject_[kMaxWorkers] = {};  // answered accept/stop → the worker (MP/SC)
  struct OkfnSlot {
    Okfn fn = nullptr;
    void* ctx = nullptr;
  };
  OkfnSlot okfn_[kNumPoints];
  std::atomic<const List*> lists_[kNumPoints]{};
  std::unique_ptr<EntryCounters[]> ctr_;   // [worker * kMaxEntries + slot]
  std::unique_ptr<EntryCounters[]> base_;  // [slot]: at the last clear_stats()
  std::vector<uint16_t> free_slots_;
  uint32_t next_id_ = 1;
  bool fifo_equal_ = false;
  std::mutex mu_;
  bool enqueue(Worker& w, const State& st, const Entry& e, rte_mbuf* m, uint16_t q);
};

// The one hook engine of a dataplane: every feature with hook points
// (bridge, l3, …) registers its points and okfns here, and the hooks feature
// attaches the rule lists and plugins of the topology. Made on first use.
Registry& registry(Dataplane& dp);

}  // namespace sluice::hooks
