#pragma once
// balance-tlb transmit load balancing (spec §3.3): the member choice for a
// hashed IP flow, and the periodic rebalance of hash buckets over members.
// Our own design (see docs/linux-differences.md): workers count bytes per
// bucket (hash & 0xff) in their own arrays; the control thread sums them
// every rebalance interval and assigns the loaded buckets to the members,
// heaviest first onto the member with the least load per unit of speed;
// buckets without an assignment use usable[hash % count].
#include <cstdint>

namespace sluice::bond {

inline constexpr unsigned kTlbBuckets = 256;        // TLB_HASH_TABLE_SIZE
inline constexpr uint64_t kTlbRebalanceMs = 10000;  // BOND_TLB_REBALANCE_INTERVAL

struct TxView;

// The member position for a frame of hash h (IP unicast). dynamic:
// tlb_dynamic_lb. kNoMember when nothing is usable.
uint8_t tlb_choose(const TxView& v, uint32_t h, bool dynamic);

// Assigns buckets with load > 0 to the usable members (positions
// usable[0..n_usable)); speed_mbps per position (0 counts as 1). Buckets
// with load 0 get kNoMember. out[kTlbBuckets].
void tlb_rebalance(const uint64_t* load, const uint8_t* usable, unsigned n_usable,
                   const uint32_t* speed_mbps, uint8_t* out);

}  // namespace sluice::bond
