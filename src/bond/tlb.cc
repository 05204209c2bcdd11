// balance-tlb: member choice and rebalance (tlb.hh).
#include "bond/tlb.hh"

#include <algorithm>

#include "bond/bond.hh"

namespace sluice::bond {

uint8_t tlb_choose(const TxView& v, uint32_t h, bool dynamic) {
  if (v.n_usable == 0) return kNoMember;
  if (dynamic) {
    const uint8_t pos = v.tlb[h & (kTlbBuckets - 1)];
    if (pos != kNoMember && ((v.usable_mask >> pos) & 1u) != 0) return pos;
  }
  return v.usable[fastmod(h, v.usable_mod, v.n_usable)];
}

void tlb_rebalance(const uint64_t* load, const uint8_t* usable, unsigned n_usable,
                   const uint32_t* speed_mbps, uint8_t* out) {
  uint16_t order[kTlbBuckets];
  unsigned k = 0;
  for (unsigned i = 0; i < kTlbBuckets; i++) {
    out[i] = kNoMember;
    if (load[i] != 0) order[k++] = static_cast<uint16_t>(i);
  }
  if (n_usable == 0) return;
  // Heaviest first; ties by bucket number so the result is deterministic.
  std::sort(order, order + k,
            [&](uint16_t a, uint16_t b) { return load[a] != load[b] ? load[a] > load[b] : a < b; });
  double assigned[kMaxMembers] = {};
  for (unsigned j = 0; j < k; j++) {
    unsigned best = 0;
    double best_w = 0;
    for (unsigned u = 0; u < n_usable; u++) {
      const uint8_t pos = usable[u];
      const double sp = speed_mbps[pos] != 0 ? speed_mbps[pos] : 1;
      const double w = (assigned[pos] + static_cast<double>(load[order[j]])) / sp;
      if (u == 0 || w < best_w) {
        best = u;
        best_w = w;
      }
    }
    out[order[j]] = usable[best];
    assigned[usable[best]] += static_cast<double>(load[order[j]]);
  }
}

// Control thread, every kTlbRebalanceMs: the bytes of each bucket since
// the last rebalance (the workers' counters only grow) decide the new map.
void BondSys::tlb_rebalance_bond(Bond& b) {
  uint64_t load[kTlbBuckets];
  for (unsigned i = 0; i < kTlbBuckets; i++) {
    uint64_t sum = 0;
    for (auto& ws : workers)
      if (b.idx < ws->tlb_bytes.size())
        sum += __atomic_load_n(&ws->tlb_bytes[b.idx][i], __ATOMIC_RELAXED);
    load[i] = sum - b.tlb_seen[i];
    b.tlb_seen[i] = sum;
  }
  uint32_t speed[kMaxMembers] = {};
  for (auto& m : b.members) speed[m->pos] = m->speed_mbps;
  tlb_rebalance(load, b.usable.data(), static_cast<unsigned>(b.usable.size()), speed, b.tlb_map);
  b.tlb_rebalances++;
  publish(b);
}

}  // namespace sluice::bond
