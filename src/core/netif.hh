// The receive path and the transmit entry point.
//
//   eth_type_trans()   net/ethernet/eth.c: pkt_type and protocol of a fresh frame
//   netif_receive()    net/core/dev.c __netif_receive_skb_core: rounds of
//                      taps → ingress actions → VLAN demux → rx_handler, then
//                      residual VLAN rule and protocol delivery (ptype_base,
//                      bound handlers) or the unhandled drop
//   dev_queue_xmit()   egress actions (tc egress) → egress taps (OUTGOING) → dev.xmit
//
// Outputs: protocol handlers, rx_handlers, device xmit.
// Drop reasons: unhandled_proto (rx_dropped, or rx_nohandler after EXACT),
//   round_limit, vlan_dev_down, mac_filter, pkt_too_small, tc_ingress,
//   tc_egress, dev_ready (tx_dropped).
// Counters: rx_packets/rx_bytes/multicast (ports at RX, VLAN devices on their
//   round), rx_dropped, rx_nohandler, tx_* (in each xmit).
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "core/device.hh"
#include "core/worker.hh"

namespace sluice {

// Classifies a burst received on `dev` (a port): fills metadata as
// eth_type_trans does, counts rx_packets/rx_bytes, and applies the NIC's
// unicast filter when the port is not promiscuous. Returns the number of
// packets kept (compacted in place).
uint16_t eth_type_trans(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n);

// Runs __netif_receive_skb_core over a burst whose packets are all on the
// same device (meta.dev) — a freshly classified RX burst. n <= kBurst.
void netif_receive(Worker& w, rte_mbuf** pkts, uint16_t n);

// The rest of a round for packets an rx_handler answered PASS later (a
// queued frame a consumer accepted): steps 11–13 on dev, then next rounds.
void netif_receive_pass(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n);

// RX on a port: classify + receive (what a worker calls after rx_burst).
void port_receive(Worker& w, Device& port, rte_mbuf** pkts, uint16_t n);

// dev_queue_xmit: packets to leave through dev (any kind). Owns the packets.
void dev_queue_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n);

// dev_queue_xmit with its common case inline, for a caller that hands over
// a burst it has just sorted (a bond's members): a device that is up, with
// no egress action or tap and no trace live, goes straight to its xmit,
// counted as the dev_queue_xmit call it is. Anything else: dev_queue_xmit.
inline void dev_queue_xmit_sorted(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  if (n - 1u < kBurst && dev.up() && dev.egress.load(std::memory_order_acquire) == nullptr &&
      dev.taps.load(std::memory_order_acquire) == nullptr && w.net.taps() == nullptr &&
      !SLUICE_TRACE_LIVE(w)) [[likely]] {
    StageScope scope(w.runtime, stage::xmit, n);
    dev.xmit(w, dev, pkts, n);
    return;
  }
  dev_queue_xmit(w, dev, pkts, n);
}

// The xmit of a port device: VLAN tag from metadata into the frame, then the
// worker's TX buffer of that port (flushed by Worker::flush_tx).
void port_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n);

// The xmit of an 802.1Q sub-device: push the tag into metadata, hand to the lower device.
void vlan_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n);

// Sends what the control thread queued on w.inject (each mbuf to
// dev_queue_xmit(meta.dev)), at most one burst per call.
void inject_xmit(Worker& w);

// Moves an in-band VLAN tag into metadata (skb_vlan_untag). false if the frame is too short.
bool vlan_untag(rte_mbuf* m);
// Pushes the metadata tag back into the frame (for TX and captures). false: no headroom.
bool vlan_insert(rte_mbuf* m);

}  // namespace sluice
