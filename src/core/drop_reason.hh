// Every drop in sluice has one of these reasons. Names follow Linux's
// SKB_DROP_REASON_* (lower case) where one exists. Features add theirs here,
// so `show drops` lists them all from one table.
#pragma once

#include <cstdint>

namespace sluice {

#define SLUICE_DROP_REASONS(X)                                                      \
  X(not_specified, "no reason given")                                              \
  X(unhandled_proto, "no protocol handler took it (Linux: rx_dropped/rx_nohandler)") \
  X(otherhost, "destination MAC is another host's (pkt_type OTHERHOST)")           \
  X(mac_filter, "unicast to another MAC on a non-promiscuous port (NIC filter)")   \
  X(round_limit, "more receive rounds than the round limit (a device loop)")       \
  X(vlan_dev_down, "VLAN sub-device is administratively down")                     \
  X(dev_ready, "device is down on transmit")                                       \
  X(link_down, "received on an administratively down port")                      \
  X(txq_full, "the NIC TX queue did not take it")                                  \
  X(nomem, "no mbuf for a copy")                                                   \
  X(pkt_too_small, "frame shorter than an Ethernet header")                        \
  X(tc_ingress, "an ingress action dropped it")                                    \
  X(tc_egress, "an egress action dropped it")

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
