// Per-stage runtime (show runtime, like VPP's): every stage of the packet
// path has a name registered once, and each call of a stage on a vector of
// packets counts calls, packets and the TSC cycles spent in it — exclusive
// of the stages it calls (a StageScope charges the time since the last
// boundary to whichever stage was running, so nested stages do not count
// twice and the stages of one path add up to the whole).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <rte_cycles.h>

namespace sluice {

inline constexpr unsigned kMaxStages = 96;
using StageId = uint8_t;
inline constexpr StageId kStageNone = 0;  // the poll loop outside every stage (not reported)

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
  uint64_t mark = 0;

  // Closes the running stage's interval at `now` and opens `id`'s.
  StageId enter(StageId id, uint16_t n, uint64_t now) {
    stats[cur].cycles += now - mark;
    mark = now;
    StageId prev = cur;
    cur = id;
    stats[id].calls++;
    stats[id].packets += n;
    return prev;
  }
  void leave(StageId prev, uint64_t now) {
    stats[cur].cycles += now - mark;
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
    if (c.cur == id) {
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
