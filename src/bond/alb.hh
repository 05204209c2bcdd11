#pragma once
// balance-alb (spec §3.3, BOND-09): balance-tlb plus receive load balancing
// (RLB) by ARP rewriting, as Linux's bond_alb.c behaves.
//
//   * Every member carries its own MAC; the active member carries the
//     bond's (on failover the new active member and the one that held the
//     bond's MAC swap MACs). sluice keeps the swap in the published TxView
//     (Device::mac is fixed once the workers run): a unicast frame is HOST
//     on a member when it is addressed to that member's current MAC, and
//     balance-alb members are promiscuous so a swapped MAC is received.
//   * The client table: 256 entries, indexed by the XOR of the client's
//     IPv4 address bytes (_simple_hash), each naming the member the client
//     sends to. ARP replies the bond sends leave through the client's
//     member with that member's MAC as sender hardware address; ARP
//     requests create the entry (the client's reply fills in its MAC and
//     the update waits RLB_UPDATE_DELAY); ARP replies received update it.
//   * Updates: entries marked ntt get RLB_ARP_BURST_SIZE ARP replies naming
//     their member, at most every RLB_UPDATE_DELAY; a member going down
//     moves its clients to the next members round-robin and retries the
//     updates RLB_UPDATE_RETRY more times; a member coming up rebalances
//     every client; learning frames every second from each member.
//
// Threads: workers read and claim entries (one atomic word per entry: the
// client's IP and member) and hand the rest (MACs, addresses, VLAN) to the
// control thread through a ring of RlbEvents; the control thread owns the
// full table, the timers, reassignment and the updates it sends.
#include <atomic>
#include <cstdint>

#include <rte_ether.h>

#include "core/device.hh"

struct rte_mbuf;
namespace sluice {
struct Worker;
}

namespace sluice::bond {

inline constexpr unsigned kRlbEntries = 256;          // RLB_HASH_TABLE_SIZE
inline constexpr uint64_t kAlbTickMs = 100;           // ALB_TIMER_TICKS_PER_SEC = 10
inline constexpr unsigned kRlbUpdateDelayTicks = 20;  // RLB_UPDATE_DELAY: 2 s
inline constexpr unsigned kRlbUpdateRetry = 3;        // RLB_UPDATE_RETRY
inline constexpr unsigned kRlbArpBurst = 2;           // RLB_ARP_BURST_SIZE
inline constexpr unsigned kAlbLpTicks = 10;           // BOND_ALB_LP_INTERVAL: 1 s
inline constexpr unsigned kAlbMaxMembers = 16;

// _simple_hash: the XOR of the bytes.
inline uint8_t alb_hash(const uint8_t* p, unsigned len) {
  uint8_t h = 0;
  for (unsigned i = 0; i < len; i++) h ^= p[i];
  return h;
}
inline uint8_t rlb_index(uint32_t ip_be) {
  return alb_hash(reinterpret_cast<const uint8_t*>(&ip_be), 4);
}

// The published word of an entry: assigned bit, member position, client IP.
inline constexpr uint64_t kRlbAssigned = uint64_t(1) << 63;
inline uint64_t rlb_pack(uint32_t ip_be, uint8_t pos) {
  return kRlbAssigned | uint64_t(pos) << 32 | ip_be;
}
inline uint32_t rlb_ip(uint64_t v) {
  return static_cast<uint32_t>(v);
}
inline uint8_t rlb_pos(uint64_t v) {
  return static_cast<uint8_t>(v >> 32);
}

enum class RlbEventKind : uint8_t { tx_reply = 1, tx_request = 2, rx_reply = 3 };

// Worker → control thread: an ARP the bond sent (rlb_arp_xmit) or an ARP
// reply a member received (rlb_arp_recv).
struct RlbEvent {
  uint32_t client_ip, server_ip;  // network order
  uint8_t client_mac[6];          // target hw (sent) / sender hw (received)
  uint16_t vlan;                  // 0: untagged
  RlbEventKind kind;
  uint8_t pos;    // the member the worker chose (sent)
  uint16_t bond;  // Bond::idx
};
static_assert(sizeof(RlbEvent) % 4 == 0, "ring elements are multiples of 4 bytes");

// rlb_client_info: the control thread's full entry.
struct RlbClient {
  bool assigned = false;
  bool ntt = false;                 // an update is due
  uint32_t ip_src = 0, ip_dst = 0;  // the bond's address, the client's (network order)
  rte_ether_addr mac_dst{};         // the client's MAC (zero until known)
  uint16_t vlan = 0;
  uint8_t pos = 0xff;  // member position (kNoMember: none could take it)
};

struct Alb {
  std::atomic<uint64_t> slot[kRlbEntries] = {};  // what workers read (rlb_pack)
  std::atomic<uint32_t> next_rx{0};              // __rlb_next_rx_slave's rotation

  // Control thread.
  RlbClient client[kRlbEntries];
  rte_ether_addr mac[kAlbMaxMembers] = {};  // each member's current MAC (TxView::mac)
  bool rx_ntt = false, rebalance = false;
  unsigned update_delay = 0, update_retry = 0, lp_counter = 0;
  uint64_t next_ms = 0;
  uint64_t updates_sent = 0, learning_sent = 0, events = 0, rebalances = 0, moved = 0;
};

struct Bond;
struct Member;
struct TxView;
class BondSys;

// Workers (alb.cc): the rx_handler of balance-alb members (bond_handle_frame
// with rlb_arp_recv as recv_probe) and the bond's xmit (bond_alb_xmit).
void alb_handle_frame(Worker& w, Member& mb, rte_mbuf** pkts, uint16_t n, RxResult* res);
void alb_start_xmit(Worker& w, Bond& b, const TxView& v, rte_mbuf** pkts, uint16_t n);

// Control thread (alb.cc).
void alb_init(BondSys& sys, Bond& b);  // at enslave: unique member MACs, the table
void alb_init_workers(BondSys& sys);   // the workers' event rings
void alb_tick(BondSys& sys, Bond& b);  // every timer call: events; every 100 ms: alb_monitor
void alb_link_change(BondSys& sys, Bond& b, Member& m, bool up);  // after the usable array
void alb_active_change(BondSys& sys, Bond& b, Member* old, Member* next);
void alb_drain_events(BondSys& sys);  // the workers' events (also from alb_tick)
// A learning frame (dst = src = mac) out of `via` (balance-tlb uses it too:
// the new active member announces the bond's MAC on failover).
void alb_learning(BondSys& sys, Bond& b, Member& via, const rte_ether_addr& mac);

}  // namespace sluice::bond
