// Packet trace: where did my packet go? `trace add N [DEV] [FILTER]` arms
// the trace; the next N packets received (on DEV, matching FILTER) are
// marked (kFlagTrace and a slot number in their metadata) and every stage
// they pass appends one fixed-size record to their slot: the stage, the
// device, the decision and, when the stage has one, a short detail (the FDB
// port, the route and next hop, the hook entry and rule, the member chosen).
// A packet's slot also holds its fate — the last of: sent DEV, delivered,
// dropped (with the reason), queued, consumed — and the first bytes of the
// frame for a summary line. `show trace` renders the slots (src/trace).
//
// Cost when no packet is traced: the per-round test of `armed` (a line
// that is only written by `trace add`) and, at each record site, a test of
// one bit of the metadata the stage already holds in cache — nothing else.
// Built with -DSLUICE_TRACE=OFF the record sites compile to nothing (the
// benchmark compares the two builds).
//
// Slots are written by one worker at a time (the one holding the packet);
// a clone (flood, mirror copy, broadcast bond copy) gets a slot of its own
// that starts with a copy of its parent's records (trace_fork). The control
// thread reads slots while workers write them: the record count is
// published with release order after the record.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <rte_mbuf.h>

#include "core/drop_reason.hh"
#include "core/meta.hh"

namespace sluice {

inline constexpr unsigned kTraceMaxPackets = 1024;
inline constexpr unsigned kTraceMaxRecs = 32;
inline constexpr unsigned kTraceHead = 128;  // bytes of the frame kept for the summary
inline constexpr unsigned kTraceDetail = 56;

enum class TraceFate : uint8_t { none, sent, delivered, dropped, queued, consumed, stolen };
const char* trace_fate_name(TraceFate f);

struct TraceRec {
  const char* stage;  // static text: "port-rx", "rx_handler", "bridge", "hook", "route", "xmit", …
  const char* what;   // static text: the decision ("ANOTHER", "fdb hit", "accept", …)
  uint64_t tsc;
  uint16_t dev;   // the device the stage ran on (kNoDev: none)
  uint16_t dev2;  // a second device: the new skb->dev, the egress port, the member (kNoDev: none)
  uint16_t protocol;
  uint16_t vlan_tci;
  uint8_t pkt_type;
  uint8_t has_vlan;
  char detail[kTraceDetail];  // "" or free text made at record time (traced packets only)
};

struct TracePacket {
  std::atomic<uint16_t> nrec{0};
  uint16_t parent = 0;  // packet number (1-based) this one is a copy of, 0: none
  uint16_t in_dev = kNoDev;
  uint8_t worker = 0;
  bool truncated = false;  // more records than kTraceMaxRecs
  uint32_t len = 0;        // frame length when marked
  uint16_t head_len = 0;
  uint8_t has_vlan = 0;
  uint16_t vlan_tci = 0;
  uint8_t head[kTraceHead];
  // The fate: what happened to it last.
  std::atomic<TraceFate> fate{TraceFate::none};
  uint16_t fate_dev = kNoDev;
  DropReason reason{};
  const char* fate_stage = nullptr;
  char fate_detail[kTraceDetail] = "";
  TraceRec rec[kTraceMaxRecs];
};

// Decides whether a packet is one to mark (the trace's FILTER).
using TraceMatchFn = bool (*)(const void* ctx, const rte_mbuf* m);

class TraceStore {
 public:
  // ---- control thread (with the workers paused: Dataplane::pause_workers) ----
  // Arms for n packets (≤ kTraceMaxPackets - used()); dev kNoDev: any
  // device, else only packets whose round is on dev. Keeps what is traced.
  void arm(uint32_t n, uint16_t dev, TraceMatchFn fn, const void* ctx);
  void disarm() { armed_.store(false, std::memory_order_relaxed); }
  // Forgets every slot and disarms; packets still carrying an old mark are
  // ignored from now on (the generation changes).
  void clear();

  // ---- readers ----
  bool armed() const { return armed_.load(std::memory_order_relaxed); }
  // True from the first `arm` until `clear`: packets may carry a mark.
  bool live() const { return live_.load(std::memory_order_relaxed); }
  uint32_t used() const;
  uint32_t remaining() const;  // packets still to be marked
  uint16_t dev_filter() const { return dev_; }
  const TracePacket* packet(uint32_t number) const;  // 1-based; nullptr if unused

  // ---- workers ----
  // Marks the packets of a round on `dev` that the armed trace selects.
  void mark(uint8_t worker, uint16_t dev, rte_mbuf** pkts, uint16_t n);
  TracePacket* slot(const rte_mbuf* m);  // nullptr: not (or no longer) traced
  // A new slot for a copy of `parent`'s packet; false when the store is full.
  bool fork(const rte_mbuf* parent, rte_mbuf* child);

 private:
  TracePacket* claim(uint32_t* number);
  void begin(TracePacket& p, uint8_t worker, uint16_t dev, const rte_mbuf* m);

  std::atomic<bool> armed_{false};
  std::atomic<bool> live_{false};
  uint8_t gen_ = 1;
  uint16_t dev_ = kNoDev;
  TraceMatchFn match_ = nullptr;
  const void* match_ctx_ = nullptr;
  std::atomic<uint32_t> limit_{0};  // marks that may be made
  std::atomic<uint32_t> marks_{0};  // marks made
  std::atomic<uint32_t> next_{0};   // slots claimed (marks and forks)
  std::unique_ptr<TracePacket[]> slots_;
};

// ---- record sites --------------------------------------------------------------------------
#ifdef SLUICE_NO_TRACE
inline constexpr bool traced(const rte_mbuf*) {
  return false;
}
#else
inline bool traced(const rte_mbuf* m) {
  return (meta(m).flags & kFlagTrace) != 0;
}
#endif

struct Worker;
// Appends a record to m's slot (call only when traced(m)). fmt: the detail, printf-style.
void trace_rec(Worker& w, const rte_mbuf* m, const char* stage, uint16_t dev, const char* what,
               uint16_t dev2 = kNoDev, const char* fmt = nullptr, ...)
    __attribute__((format(printf, 7, 8)));
// Sets m's fate (the last one set wins: a packet queued and reinjected ends sent).
void trace_fate(Worker& w, const rte_mbuf* m, TraceFate f, uint16_t dev, const char* stage,
                const char* fmt = nullptr, ...) __attribute__((format(printf, 6, 7)));
void trace_drop(Worker& w, const rte_mbuf* m, uint16_t dev, DropReason r);
// The detail of the fate that comes next (a drop: which hook entry, …).
void trace_fate_detail(Worker& w, const rte_mbuf* m, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Freed without a drop: fate `consumed` by the last stage, unless it has one.
void trace_consumed(Worker& w, const rte_mbuf* m);
// A copy of a traced packet: its own slot, starting with its parent's path.
void trace_fork(Worker& w, const rte_mbuf* parent, rte_mbuf* child);

// The record sites: no cost beyond the flag test when m is not traced.
#define SLUICE_TRACE(w, m, ...)                   \
  do {                                            \
    if (::sluice::traced(m)) [[unlikely]]         \
      ::sluice::trace_rec((w), (m), __VA_ARGS__); \
  } while (0)
#define SLUICE_TRACE_FATE(w, m, ...)               \
  do {                                             \
    if (::sluice::traced(m)) [[unlikely]]          \
      ::sluice::trace_fate((w), (m), __VA_ARGS__); \
  } while (0)
#define SLUICE_TRACE_DETAIL(w, m, ...)                    \
  do {                                                    \
    if (::sluice::traced(m)) [[unlikely]]                 \
      ::sluice::trace_fate_detail((w), (m), __VA_ARGS__); \
  } while (0)
// A record for each packet of a burst (the loop index is `i` in the
// arguments): one test of the store's `live` flag per burst when no trace
// was added since the last `clear trace`, instead of one per packet.
// True while a trace may have marked packets (a burst-level gate for
// record sites inside per-packet loops: the loop then tests no flag).
#ifdef SLUICE_NO_TRACE
#define SLUICE_TRACE_LIVE(w) false
#define SLUICE_TRACE_EACH(w, pkts, n, i, ...) \
  do {                                        \
  } while (0)
#else
#define SLUICE_TRACE_LIVE(w) ((w).net.trace.live())
#define SLUICE_TRACE_EACH(w, pkts, n, i, ...)                                       \
  do {                                                                              \
    if (SLUICE_TRACE_LIVE(w)) [[unlikely]]                                          \
      for (uint16_t i = 0; i < (n); i++) SLUICE_TRACE((w), (pkts)[i], __VA_ARGS__); \
  } while (0)
#endif
#define SLUICE_TRACE_FORK(w, parent, child)         \
  do {                                              \
    if (::sluice::traced(parent)) [[unlikely]]      \
      ::sluice::trace_fork((w), (parent), (child)); \
  } while (0)

}  // namespace sluice
