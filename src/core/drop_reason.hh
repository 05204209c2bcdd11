// Every drop in sluice has one of these reasons. Names follow Linux's
// SKB_DROP_REASON_* (lower case) where one exists. Features add theirs here,
// so `show drops` lists them all from one table.
#pragma once

#include <cstdint>

namespace sluice {

#define SLUICE_DROP_REASONS(X)                                                          \
  X(not_specified, "no reason given")                                                   \
  X(unhandled_proto, "no protocol handler took it (Linux: rx_dropped/rx_nohandler)")    \
  X(otherhost, "destination MAC is another host's (pkt_type OTHERHOST)")                \
  X(mac_filter, "unicast to another MAC on a non-promiscuous port (NIC filter)")        \
  X(round_limit, "more receive rounds than the round limit (a device loop)")            \
  X(vlan_dev_down, "VLAN sub-device is administratively down")                          \
  X(dev_ready, "device is down on transmit")                                            \
  X(link_down, "received on an administratively down port")                             \
  X(txq_full, "the NIC TX queue did not take it")                                       \
  X(no_txq, "this worker has no TX queue on the port (the PMD has fewer than workers)") \
  X(nomem, "no mbuf for a copy")                                                        \
  X(pkt_too_small, "frame shorter than an Ethernet header")                             \
  X(tc_ingress, "an ingress action dropped it")                                         \
  X(tc_egress, "an egress action dropped it")                                           \
  X(mac_invalid_source, "bridge: source MAC is multicast or all-zero")                  \
  X(bridge_ingress_stp_state, "bridge: port not LEARNING/FORWARDING (STP state)")       \
  X(bridge_learning_state, "bridge: port in LEARNING state (learned, not forwarded)")   \
  X(bridge_pause, "bridge: 802.3x pause (01:80:C2:00:00:01) is never bridged")          \
  X(bridge_vlan_filter, "bridge: VLAN filtering refused the VID (port or bridge)")      \
  X(bridge_no_pvid, "bridge: untagged frame on a port without a PVID")                  \
  X(no_tx_target, "bridge: no port may send it (own port without hairpin, none left)")  \
  X(netfilter_drop, "a netfilter-style hook dropped it (show hooks: which one)")        \
  X(nfqueue_full, "hooks: the queue ring was full (no bypass)")                         \
  X(nfqueue_nolistener, "hooks: queue verdict without a consumer (no bypass)")          \
  X(pkt_too_big, "bigger than the egress device's MTU")                                 \
  X(ip_inhdr, "IP: bad header (version, IHL, length, TTL expired in forwarding)")       \
  X(ip_csum, "IPv4: header checksum error")                                             \
  X(ip_invalid_source, "IP: martian source address")                                    \
  X(ip_invalid_dest, "IP: martian destination address")                                 \
  X(ip_innoroutes, "IP: no route to the destination (InNoRoutes)")                      \
  X(ip_inaddrerrors, "IPv4: unreachable destination (InAddrErrors)")                    \
  X(ip_noproto, "IP: no handler for this IP protocol here (InUnknownProtos)")           \
  X(no_socket, "no socket for this port (ICMP port unreachable or TCP RST sent)")       \
  X(tcp_csum, "TCP: checksum error")                                                    \
  X(ip_fwd_not_host, "IP: forwarding of a frame whose pkt_type is not HOST")            \
  X(ip_frag_local, "IPv4: fragment for a local address (no reassembly)")                \
  X(ip_outnoroutes, "IP: no route for a locally generated packet")                      \
  X(icmp_csum, "ICMP/ICMPv6: checksum error")                                           \
  X(icmp_ignored, "ICMP: not answered (broadcast echo, error, unknown type)")           \
  X(neigh_failed, "neighbour resolution failed (FAILED)")                               \
  X(neigh_queuefull, "neighbour: the unresolved queue overflowed (unres_discards)")     \
  X(neigh_createfail, "neighbour: no entry could be created")                           \
  X(arp_invalid, "ARP: malformed or not Ethernet/IPv4")

enum class DropReason : uint16_t {
#define SLUICE_DR_ENUM(name, text) name,
  SLUICE_DROP_REASONS(SLUICE_DR_ENUM)
#undef SLUICE_DR_ENUM
      count_
};
inline constexpr unsigned kNumDropReasons = static_cast<unsigned>(DropReason::count_);

const char* drop_reason_name(DropReason r);
const char* drop_reason_text(DropReason r);

}  // namespace sluice
