// Peer notification on failover (bond_send_gratuitous_arp, ndisc_send_na,
// and the bridge learning frames): frames the new active member sends so
// that switches and neighbours relearn at once.
#include <arpa/inet.h>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>
#include "bond/bond.hh"
#include "bond/config.hh"
#include "bridge/config.hh"
#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/netif.hh"
#include "l3/config.hh"

namespace sluice::bond {

// ---- peer notification ----------------------------------------------------------------------

rte_mbuf* new_frame(rte_mempool* mp, unsigned len, uint8_t** out) {
  if (mp == nullptr) return nullptr;
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return nullptr;
  const unsigned total = std::max(len, 60u);  // padded as a NIC pads to ETH_ZLEN
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(total)));
  if (p == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  std::memset(p, 0, total);
  *out = p;
  return m;
}

void frame_meta(rte_mbuf* m, uint16_t dev, uint16_t protocol, uint16_t vlan) {
  PktMeta& md = meta(m);
  md = PktMeta{};
  md.dev = dev;
  md.orig_dev = dev;
  md.protocol = protocol;
  md.pkt_type = static_cast<uint8_t>(PktType::outgoing);
  if (vlan != 0) {
    md.flags |= kFlagVlan;
    md.vlan_proto = 0x8100;
    md.vlan_tci = vlan;
  }
}

namespace {

// arp_send(ARPOP_REQUEST, ip, ip, mac, target hw 0): what
// inetdev_send_gratuitous_arp sends on NETDEV_NOTIFY_PEERS.
rte_mbuf* garp(rte_mempool* mp, const rte_ether_addr& mac, uint32_t ip) {
  uint8_t* p;
  rte_mbuf* m = new_frame(mp, 42, &p);
  if (m == nullptr) return nullptr;
  std::memset(p, 0xff, 6);
  std::memcpy(p + 6, mac.addr_bytes, 6);
  p[12] = 0x08, p[13] = 0x06;
  uint8_t* a = p + 14;
  a[0] = 0, a[1] = 1, a[2] = 0x08, a[3] = 0, a[4] = 6, a[5] = 4, a[6] = 0, a[7] = 1;
  std::memcpy(a + 8, mac.addr_bytes, 6);
  std::memcpy(a + 14, &ip, 4);
  std::memcpy(a + 24, &ip, 4);
  return m;
}

// ndisc_send_unsol_na: NA to ff02::1 from the address, override, TLLA option.
rte_mbuf* unsol_na(rte_mempool* mp, const rte_ether_addr& mac, const std::array<uint8_t, 16>& ip) {
  uint8_t* p;
  rte_mbuf* m = new_frame(mp, 14 + 40 + 32, &p);
  if (m == nullptr) return nullptr;
  static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
  std::memcpy(p, all_nodes_mac, 6);
  std::memcpy(p + 6, mac.addr_bytes, 6);
  p[12] = 0x86, p[13] = 0xdd;
  auto* ip6 = reinterpret_cast<rte_ipv6_hdr*>(p + 14);
  ip6->vtc_flow = rte_cpu_to_be_32(6u << 28);
  ip6->payload_len = rte_cpu_to_be_16(32);
  ip6->proto = 58;
  ip6->hop_limits = 255;
  std::memcpy(ip6->src_addr, ip.data(), 16);
  static const uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  std::memcpy(ip6->dst_addr, all_nodes, 16);
  uint8_t* icmp = p + 14 + 40;
  icmp[0] = 136;   // neighbour advertisement
  icmp[4] = 0x20;  // override
  std::memcpy(icmp + 8, ip.data(), 16);
  icmp[24] = 2;  // target link-layer address
  icmp[25] = 1;
  std::memcpy(icmp + 26, mac.addr_bytes, 6);
  uint16_t ck = rte_ipv6_udptcp_cksum(ip6, icmp);
  std::memcpy(icmp + 2, &ck, 2);
  // The frame is padded to 60 bytes at most; an NA is longer than that.
  return m;
}

// alb_send_lp_vid's learning packet: dst = src = the MAC, ETH_P_LOOPBACK.
rte_mbuf* learning_frame(rte_mempool* mp, const rte_ether_addr& mac) {
  uint8_t* p;
  rte_mbuf* m = new_frame(mp, 60, &p);
  if (m == nullptr) return nullptr;
  std::memcpy(p, mac.addr_bytes, 6);
  std::memcpy(p + 6, mac.addr_bytes, 6);
  p[12] = 0x90, p[13] = 0x00;
  return m;
}

}  // namespace

// NETDEV_NOTIFY_PEERS for the bond: a gratuitous ARP per IPv4 address and an
// unsolicited NA per IPv6 address of the bond and of its VLANs; when the
// bond is a bridge port, the same for the bridge's addresses, and one
// learning frame per MAC the bridge owns (its FDB-local entries: the
// bridge's and its ports'), so the switch relearns them behind the new
// active member at once.
void BondSys::notify_peers(Bond& b) {
  if (b.curr_active == nullptr) return;
  const auto& addrs = dp.topo.get<l3::Config>().addresses;
  auto notify_dev = [&](const Device& d, uint16_t vlan) {
    for (auto& a : addrs) {
      if (a.dev != d.name) continue;
      std::string host = a.address.substr(0, a.address.find('/'));
      rte_mbuf* m = nullptr;
      in_addr v4;
      std::array<uint8_t, 16> v6;
      if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        m = garp(pool, d.mac, v4.s_addr);
        if (m != nullptr) frame_meta(m, b.dev->index, 0x0806, vlan);
        if (m != nullptr) b.ctr.garp_sent++;
      } else if (inet_pton(AF_INET6, host.c_str(), v6.data()) == 1) {
        m = unsol_na(pool, d.mac, v6);
        if (m != nullptr) frame_meta(m, b.dev->index, 0x86dd, vlan);
        if (m != nullptr) b.ctr.na_sent++;
      }
      if (m != nullptr && !inject(m)) b.ctr.inject_failed++;
    }
  };
  notify_dev(*b.dev, 0);
  for (Device* d : dp.net.devices())
    if (d->kind == DevKind::vlan && d->link == b.dev->index) notify_dev(*d, d->vlan_id);
  const uint16_t master = b.dev->master.load();
  if (Device* br = master != kNoDev ? dp.net.dev(master) : nullptr) {
    notify_dev(*br, 0);
    std::vector<rte_ether_addr> macs{br->mac};
    for (Device* d : dp.net.devices())
      if (d->master.load() == master && std::none_of(macs.begin(), macs.end(), [&](auto& x) {
            return rte_is_same_ether_addr(&x, &d->mac);
          }))
        macs.push_back(d->mac);
    for (auto& mac : macs) {
      rte_mbuf* m = learning_frame(pool, mac);
      if (m == nullptr) continue;
      frame_meta(m, b.curr_active->dev->index, 0x9000, 0);
      if (inject(m))
        b.ctr.learning_sent++;
      else
        b.ctr.inject_failed++;
    }
  }
}

}  // namespace sluice::bond
