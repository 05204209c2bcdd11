// Per-packet metadata: the sk_buff fields sluice needs, kept in the mbuf's
// private area (every pool sluice creates has kMbufPrivSize bytes of it).
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

namespace sluice {

// Linux PACKET_* values (include/uapi/linux/if_packet.h).
enum class PktType : uint8_t {
  host = 0,
  broadcast = 1,
  multicast = 2,
  otherhost = 3,
  outgoing = 4,
  loopback = 5,
};
const char* pkt_type_name(PktType t);

inline constexpr uint16_t kNoDev = 0xffff;
inline constexpr uint16_t kMbufPrivSize = 64;  // one cache line, also what rte_graph wants
inline constexpr unsigned kRoundLimit = 8;     // rounds of __netif_receive_skb_core per packet

enum MetaFlag : uint8_t {
  kFlagPtPrev = 1 << 0,    // pt_prev of a mixed vector (netif.cc PtPrev::flagged)
  kFlagExact = 1 << 1,     // deliver_exact: an rx_handler returned EXACT
  kFlagVlan = 1 << 2,      // an 802.1Q/802.1ad tag is held in vlan_tci/vlan_proto
  kFlagTrace = 1 << 3,     // packet trace requested
  kFlagMirrored = 1 << 4,  // a mirror copy: never mirrored again
};

struct PktMeta {
  uint16_t dev;         // skb->dev: device of the current round
  uint16_t orig_dev;    // device __netif_receive_skb_core was entered on
  uint16_t protocol;    // skb->protocol, host byte order
  uint16_t vlan_tci;    // out-of-band tag (valid when kFlagVlan)
  uint16_t vlan_proto;  // 0x8100 or 0x88a8, host order
  uint16_t skb_iif;     // ifindex of the current round's device
  uint8_t pkt_type;     // PktType
  uint8_t rounds;       // rounds made so far
  uint8_t flags;        // MetaFlag
  uint8_t mirror_depth;
  uint32_t mark;
  uint16_t trace_id;  // kFlagTrace: 1-based slot in the trace store (src/core/trace.hh)
  uint8_t trace_gen;  // the store's generation when marked (older marks are ignored)
  uint64_t user[4];   // scratch for the stage that owns the packet (not preserved across stages)
};
static_assert(sizeof(PktMeta) <= kMbufPrivSize, "metadata must fit the mbuf private area");

inline PktMeta& meta(rte_mbuf* m) {
  return *static_cast<PktMeta*>(rte_mbuf_to_priv(m));
}
inline const PktMeta& meta(const rte_mbuf* m) {
  return *static_cast<const PktMeta*>(rte_mbuf_to_priv(const_cast<rte_mbuf*>(m)));
}
inline PktType pkt_type(const rte_mbuf* m) {
  return static_cast<PktType>(meta(m).pkt_type);
}

}  // namespace sluice
