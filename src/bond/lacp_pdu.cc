// 802.3ad on the wire: LACPDU parse and build, and the slow-protocol frames
// (LACPDUs, Marker responses) a member sends through the workers' inject
// rings. The machines that decide what to send are in lacp.cc.
#include <cstring>

#include <rte_mbuf.h>

#include "bond/bond.hh"
#include "bond/lacp.hh"
#include "core/meta.hh"

namespace sluice::bond {

namespace {

constexpr uint8_t kSlowMcast[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x02};

inline uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

}  // namespace

bool parse_lacpdu(const uint8_t* p, Lacpdu* out) {
  if (p[0] != 1) return false;
  auto info = [](const uint8_t* q, PortParams& pp) {
    pp.system_priority = rd16(q);
    std::memcpy(pp.system.addr_bytes, q + 2, 6);
    pp.key = rd16(q + 8);
    pp.port_priority = rd16(q + 10);
    pp.port_number = rd16(q + 12);
    pp.port_state = q[14];
  };
  info(p + 4, out->actor);
  info(p + 24, out->partner);
  return true;
}

void write_lacpdu(uint8_t* p, const PortParams& actor, const PortParams& partner) {
  std::memset(p, 0, kLacpduLen);
  p[0] = 1;  // subtype LACPDU
  p[1] = 1;  // version
  auto info = [](uint8_t* q, uint8_t tlv, const PortParams& pp) {
    q[0] = tlv;
    q[1] = 20;
    wr16(q + 2, pp.system_priority);
    std::memcpy(q + 4, pp.system.addr_bytes, 6);
    wr16(q + 10, pp.key);
    wr16(q + 12, pp.port_priority);
    wr16(q + 14, pp.port_number);
    q[16] = pp.port_state;
  };
  info(p + 2, 1, actor);
  info(p + 22, 2, partner);
  p[42] = 3;   // collector information
  p[43] = 16;  // collector_max_delay 0
  // terminator: type 0, length 0, reserved
}

namespace {
rte_mbuf* slow_frame(rte_mempool* mp, const Member& m, uint8_t** body) {
  if (mp == nullptr) return nullptr;
  rte_mbuf* f = rte_pktmbuf_alloc(mp);
  if (f == nullptr) return nullptr;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(f, RTE_ETHER_HDR_LEN + kLacpduLen));
  if (p == nullptr) {
    rte_pktmbuf_free(f);
    return nullptr;
  }
  std::memcpy(p, kSlowMcast, 6);
  std::memcpy(p + 6, m.perm_mac.addr_bytes, 6);  // ad_lacpdu_send: the member's own MAC
  p[12] = 0x88;
  p[13] = 0x09;
  PktMeta& md = meta(f);
  md = PktMeta{};
  md.dev = md.orig_dev = m.dev->index;
  md.protocol = 0x8809;
  md.pkt_type = static_cast<uint8_t>(PktType::outgoing);
  *body = p + RTE_ETHER_HDR_LEN;
  return f;
}
}  // namespace

// __update_lacpdu_from_port + ad_lacpdu_send, through the member's device.
void BondSys::ad_send_lacpdu(Member& m) {
  AdPort& p = m.ad;
  uint8_t* body;
  rte_mbuf* f = slow_frame(pool, m, &body);
  if (f == nullptr) {
    p.ctr.tx_failed++;
    return;
  }
  PortParams actor;
  actor.system = p.actor_system;
  actor.system_priority = p.actor_system_priority;
  actor.key = p.actor_oper_key;
  actor.port_priority = p.actor_port_priority;
  actor.port_number = p.actor_port_number;
  actor.port_state = p.actor_oper_state;
  write_lacpdu(body, actor, p.partner_oper);
  if (inject(f)) {
    p.ntt = false;
    p.ctr.lacpdu_tx++;
  } else {
    p.ctr.tx_failed++;
  }
}

// ad_marker_info_received: the same Marker, as a Response.
void BondSys::ad_send_marker(Member& m, const uint8_t* marker) {
  uint8_t* body;
  rte_mbuf* f = slow_frame(pool, m, &body);
  if (f == nullptr) {
    m.ad.ctr.tx_failed++;
    return;
  }
  std::memcpy(body, marker, kLacpduLen);
  body[2] = 2;  // AD_MARKER_RESPONSE_SUBTYPE
  if (inject(f))
    m.ad.ctr.marker_tx++;
  else
    m.ad.ctr.tx_failed++;
}

}  // namespace sluice::bond
