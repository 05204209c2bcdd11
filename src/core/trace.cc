// The packet trace store and its record sites (src/core/trace.hh).
#include "core/trace.hh"

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "core/net.hh"
#include "core/worker.hh"

namespace sluice {

const char* trace_fate_name(TraceFate f) {
  switch (f) {
    case TraceFate::none:
      return "in flight";
    case TraceFate::sent:
      return "sent";
    case TraceFate::delivered:
      return "delivered";
    case TraceFate::dropped:
      return "dropped";
    case TraceFate::queued:
      return "queued";
    case TraceFate::consumed:
      return "consumed";
    case TraceFate::stolen:
      return "stolen";
  }
  return "?";
}

void TraceStore::arm(uint32_t n, uint16_t dev, TraceMatchFn fn, const void* ctx) {
  if (!slots_) slots_ = std::make_unique<TracePacket[]>(kTraceMaxPackets);
  dev_ = dev;
  match_ = fn;
  match_ctx_ = ctx;
  // Marks count from here: n more than have been made.
  limit_.store(marks_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  live_.store(true, std::memory_order_relaxed);
  armed_.store(n != 0, std::memory_order_release);
}

void TraceStore::clear() {
  armed_.store(false, std::memory_order_relaxed);
  live_.store(false, std::memory_order_relaxed);
  if (++gen_ == 0) gen_ = 1;
  next_.store(0, std::memory_order_relaxed);
  marks_.store(0, std::memory_order_relaxed);
  limit_.store(0, std::memory_order_relaxed);
  match_ = nullptr;
  match_ctx_ = nullptr;
  dev_ = kNoDev;
}

uint32_t TraceStore::used() const {
  uint32_t n = next_.load(std::memory_order_acquire);
  return n < kTraceMaxPackets ? n : kTraceMaxPackets;
}

uint32_t TraceStore::remaining() const {
  if (!armed()) return 0;
  uint32_t m = marks_.load(std::memory_order_relaxed), l = limit_.load(std::memory_order_relaxed);
  return l > m ? l - m : 0;
}

const TracePacket* TraceStore::packet(uint32_t number) const {
  if (!slots_ || number == 0 || number > used()) return nullptr;
  return &slots_[number - 1];
}

TracePacket* TraceStore::claim(uint32_t* number) {
  uint32_t k = next_.fetch_add(1, std::memory_order_acq_rel);
  if (k >= kTraceMaxPackets) {
    armed_.store(false, std::memory_order_relaxed);
    return nullptr;
  }
  *number = k + 1;
  return &slots_[k];
}

void TraceStore::begin(TracePacket& p, uint8_t worker, uint16_t dev, const rte_mbuf* m) {
  const PktMeta& md = meta(m);
  p.nrec.store(0, std::memory_order_relaxed);
  p.parent = 0;
  p.in_dev = dev;
  p.worker = worker;
  p.truncated = false;
  p.len = m->pkt_len;
  p.has_vlan = (md.flags & kFlagVlan) ? 1 : 0;
  p.vlan_tci = md.vlan_tci;
  uint32_t h = m->pkt_len < kTraceHead ? m->pkt_len : kTraceHead;
  const void* d = rte_pktmbuf_read(m, 0, h, p.head);
  if (d != nullptr && d != p.head) std::memcpy(p.head, d, h);
  p.head_len = static_cast<uint16_t>(d != nullptr ? h : 0);
  p.fate_dev = kNoDev;
  p.reason = DropReason{};
  p.fate_stage = nullptr;
  p.fate_detail[0] = '\0';
  p.fate.store(TraceFate::none, std::memory_order_release);
}

void TraceStore::mark(uint8_t worker, uint16_t dev, rte_mbuf** pkts, uint16_t n) {
  if (dev_ != kNoDev && dev_ != dev) return;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    PktMeta& md = meta(m);
    if ((md.flags & kFlagTrace) && slot(m) != nullptr) continue;  // already traced
    // Without a device, packets are marked where they enter: their first round.
    if (dev_ == kNoDev && md.rounds != 0) continue;
    if (match_ != nullptr && !match_(match_ctx_, m)) continue;
    if (marks_.fetch_add(1, std::memory_order_acq_rel) >= limit_.load(std::memory_order_relaxed)) {
      armed_.store(false, std::memory_order_relaxed);
      return;
    }
    uint32_t number;
    TracePacket* p = claim(&number);
    if (p == nullptr) return;
    begin(*p, worker, dev, m);
    md.flags |= kFlagTrace;
    md.trace_id = static_cast<uint16_t>(number);
    md.trace_gen = gen_;
  }
}

TracePacket* TraceStore::slot(const rte_mbuf* m) {
  const PktMeta& md = meta(m);
  if (!slots_ || md.trace_gen != gen_ || md.trace_id == 0 ||
      md.trace_id > next_.load(std::memory_order_relaxed) || md.trace_id > kTraceMaxPackets)
    return nullptr;
  return &slots_[md.trace_id - 1];
}

bool TraceStore::fork(const rte_mbuf* parent, rte_mbuf* child) {
  PktMeta& cm = meta(child);
  const TracePacket* from = slot(parent);
  uint32_t number;
  TracePacket* p = from != nullptr ? claim(&number) : nullptr;
  if (p == nullptr) {
    cm.flags &= static_cast<uint8_t>(~kFlagTrace);
    return false;
  }
  begin(*p, from->worker, from->in_dev, child);
  p->len = from->len;
  p->head_len = from->head_len;
  p->has_vlan = from->has_vlan;
  p->vlan_tci = from->vlan_tci;
  std::memcpy(p->head, from->head, from->head_len);
  uint16_t n = from->nrec.load(std::memory_order_acquire);
  if (n > kTraceMaxRecs) n = kTraceMaxRecs;
  std::memcpy(static_cast<void*>(p->rec), from->rec, n * sizeof(TraceRec));
  p->truncated = from->truncated;
  p->parent = meta(parent).trace_id;
  p->nrec.store(n, std::memory_order_release);
  cm.flags |= kFlagTrace;
  cm.trace_id = static_cast<uint16_t>(number);
  cm.trace_gen = gen_;
  return true;
}

namespace {

// The record a fate without its own stage is charged to (nullptr: none yet).
const TraceRec* last_record(const TracePacket& p) {
  uint16_t n = p.nrec.load(std::memory_order_relaxed);
  return n != 0 ? &p.rec[(n > kTraceMaxRecs ? kTraceMaxRecs : n) - 1] : nullptr;
}

void vformat(char* out, const char* fmt, va_list ap) {
  if (fmt == nullptr) {
    out[0] = '\0';
    return;
  }
  std::vsnprintf(out, kTraceDetail, fmt, ap);
}

}  // namespace

void trace_rec(Worker& w, const rte_mbuf* m, const char* stage, uint16_t dev, const char* what,
               uint16_t dev2, const char* fmt, ...) {
  TracePacket* p = w.net.trace.slot(m);
  if (p == nullptr) return;
  uint16_t n = p->nrec.load(std::memory_order_relaxed);
  if (n >= kTraceMaxRecs) {
    p->truncated = true;
    return;
  }
  const PktMeta& md = meta(m);
  TraceRec& r = p->rec[n];
  r.stage = stage;
  r.what = what;
  r.tsc = rte_rdtsc();
  r.dev = dev;
  r.dev2 = dev2;
  r.protocol = md.protocol;
  r.pkt_type = md.pkt_type;
  r.has_vlan = (md.flags & kFlagVlan) ? 1 : 0;
  r.vlan_tci = md.vlan_tci;
  va_list ap;
  va_start(ap, fmt);
  vformat(r.detail, fmt, ap);
  va_end(ap);
  p->nrec.store(static_cast<uint16_t>(n + 1), std::memory_order_release);
}

void trace_fate(Worker& w, const rte_mbuf* m, TraceFate f, uint16_t dev, const char* stage,
                const char* fmt, ...) {
  TracePacket* p = w.net.trace.slot(m);
  if (p == nullptr) return;
  p->fate_dev = dev;
  p->fate_stage = stage;
  va_list ap;
  va_start(ap, fmt);
  vformat(p->fate_detail, fmt, ap);
  va_end(ap);
  p->fate.store(f, std::memory_order_release);
}

void trace_drop(Worker& w, const rte_mbuf* m, uint16_t dev, DropReason r) {
  TracePacket* p = w.net.trace.slot(m);
  if (p == nullptr) return;
  const TraceRec* last = last_record(*p);
  p->reason = r;
  p->fate_dev = dev;
  p->fate_stage = last != nullptr ? last->stage : "rx";
  p->fate.store(TraceFate::dropped, std::memory_order_release);  // fate_detail: trace_fate_detail
}

void trace_fate_detail(Worker& w, const rte_mbuf* m, const char* fmt, ...) {
  TracePacket* p = w.net.trace.slot(m);
  if (p == nullptr) return;
  va_list ap;
  va_start(ap, fmt);
  vformat(p->fate_detail, fmt, ap);
  va_end(ap);
}

void trace_consumed(Worker& w, const rte_mbuf* m) {
  TracePacket* p = w.net.trace.slot(m);
  if (p == nullptr || p->fate.load(std::memory_order_relaxed) != TraceFate::none) return;
  const TraceRec* last = last_record(*p);
  p->fate_dev = last != nullptr ? last->dev : kNoDev;
  p->fate_stage = last != nullptr ? last->stage : "rx";
  std::snprintf(p->fate_detail, kTraceDetail, "%s", last != nullptr ? last->what : "");
  p->fate.store(TraceFate::consumed, std::memory_order_release);
}

void trace_fork(Worker& w, const rte_mbuf* parent, rte_mbuf* child) {
  w.net.trace.fork(parent, child);
}

}  // namespace sluice
