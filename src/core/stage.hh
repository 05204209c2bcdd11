// Per-stage runtime (show runtime, like VPP's): every stage of the packet
// path has a name registered once, and each call of a stage on a vector of
// packets counts calls, packets and the TSC cycles spent in it — exclusive
// of the stages it calls (a StageScope charges the time since the last
// boundary to whichever stage was running, so nested stages do not count
// twice and the stages of one path add up to the whole).
//
// Calls and packets are counted on every burst; the clock is read on one
// received burst in kStageSampleEvery (the first, then every 16th), and
// those bursts' cycles count kStageSampleEvery times: a TSC read costs
// about 20 cycles on this class of machine and a burst crosses ten or more
// stage boundaries, which timing every burst would add to the path being
// measured (VPP reads the clock per node call; at 64 bytes this is the
// difference between the path and the path plus its instrumentation).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <rte_cycles.h>

namespace sluice {

inline constexpr unsigned kMaxStages = 96;
using StageId = uint8_t;
inline constexpr StageId kStageNone = 0;  // the poll loop outside every stage (not reported)
inline constexpr unsigned kStageSampleEvery = 16;  // a power of two

struct StageStats {
  uint64_t calls, packets, cycles;
};

// Registers a stage (the same name always gives the same id). Safe during
// static initialisation; ids are dense, in registration order. rank: where
// `show runtime` lists it, in the order a packet meets the stages (100 rx,
// 200 rx_handlers, 300 bridge, 400 protocols and L3, 700 xmit, 900 tx).
StageId stage_register(const char* name, int rank = 500);
StageId stage_register(const std::string& name, int rank = 500);
const char* stage_name(StageId id);
int stage_rank(StageId id);
unsigned stage_count();  // ids [1, stage_count()) are stages
// Ids [1, stage_count()) by rank, then registration order.
std::vector<StageId> stages_in_order();

// The running stage and the time of the last boundary, per worker.
struct StageClock {
  StageStats stats[kMaxStages]{};
  StageId cur = kStageNone;
  bool timed = true;    // the current burst reads the clock (the worker sets it)
  uint32_t bursts = 0;  // received bursts so far
  uint64_t mark = 0;

  // Whether the next received burst is timed (read before the poll, so the
  // poll itself is timed only then).
  bool next_timed() const { return (bursts & (kStageSampleEvery - 1)) == 0; }
  // Closes the running stage's interval at `now` and opens `id`'s.
  StageId enter(StageId id, uint16_t n, uint64_t now) {
    stats[cur].cycles += (now - mark) * kStageSampleEvery;
    mark = now;
    StageId prev = cur;
    cur = id;
    stats[id].calls++;
    stats[id].packets += n;
    return prev;
  }
  void leave(StageId prev, uint64_t now) {
    stats[cur].cycles += (now - mark) * kStageSampleEvery;
    mark = now;
    cur = prev;
  }
  void reset() {
    for (auto& s : stats) s = StageStats{};
  }
};

// RAII: the scope of one call of a stage on n packets. A stage entered from
// within itself (a bond member's dev_queue_xmit inside the bond's, the next
// round of an rx_handler's ANOTHER inside netif-receive) counts its call and
// packets but reads no clock: its cycles would go to the same stage anyway.
class StageScope {
 public:
  StageScope(StageClock& c, StageId id, uint16_t n) : c_(c), prev_(id) {
    if (!c.timed || c.cur == id) {  // untimed: cur stays kStageNone, nothing to close
      prev_ = c.cur;
      c.stats[id].calls++;
      c.stats[id].packets += n;
    } else {
      prev_ = c.enter(id, n, rte_rdtsc());
    }
  }
  ~StageScope() {
    if (prev_ != c_.cur) c_.leave(prev_, rte_rdtsc());
  }
  StageScope(const StageScope&) = delete;
  StageScope& operator=(const StageScope&) = delete;

 private:
  StageClock& c_;
  StageId prev_;
};

}  // namespace sluice
