// Kernel peers: what a port must finish when the other end of its wire is a
// Linux stack that left its transmit offloads undone. A veth comes with TX
// checksum offload, TSO and GSO on, so a namespace host hands its peer
// TCP/UDP frames whose checksum is CHECKSUM_PARTIAL (the field holds the
// folded pseudo-header sum) and TCP frames of up to 64 KB (one TSO/GSO
// frame, cut into MTU-sized segments only by whoever transmits it on a wire).
// A Linux bridge or router forwards those as they are and lets the egress
// device finish them (validate_xmit_skb: skb_gso_segment, skb_checksum_help);
// sluice finishes them as they arrive, on the ports that need it:
//
//   complete()   skb_checksum_help: a TCP/UDP checksum field holding exactly
//                the folded pseudo-header sum is completed; a good checksum,
//                UDP/IPv4 without one (0) and any other (bad) value are left
//                as they are, so a genuinely bad checksum is forwarded as a
//                router would
//   segment()    tcp_gso_segment: a TCP frame bigger than the port's MTU is
//                cut into MTU-sized segments (sequence numbers, IPv4 ID + 1
//                each, FIN/PSH on the last, CWR on the first, full checksums)
//   receive()    per burst: the frames the ring cut (an IP length beyond the
//                frame, or a frame as long as the ring's frame) are dropped,
//                others completed or segmented, then port_receive in bursts
//
// What DPDK 22.11's PMDs say (checked in the v22.11.11 source and measured):
// net_af_packet (TPACKET_V2 ring, no PACKET_VNET_HDR) copies tp_snaplen bytes
// into one mbuf and reports nothing else: tp_status' TP_STATUS_CSUMNOTREADY /
// TP_STATUS_CSUM_VALID and tp_len are dropped, ol_flags carry only the VLAN
// bits, RX scatter is not offered (rx_offload_capa = VLAN_STRIP). So the
// checksum state must be read from the frame itself, and a frame longer than
// the ring frame arrives cut to framesz - 66 bytes. net_tap opens its tap
// without IFF_VNET_HDR or TUNSETOFFLOAD, so the kernel completes checksums and
// segments before the tap; it needs none of this (and drops what does not fit
// its mbufs itself, counted in its ierrors).
//
// So for net_af_packet ports only (a per-port pointer, Device::rx_fixup, set
// at port setup from the driver name; every other port pays one predictable
// branch per burst): when the device string gives no ring geometry, sluice
// asks for frames of 64 KB (kFrameSize/kBlockSize/kFrameCount below) and RX
// buffers big enough to hold them (one small pool of 64 KB mbufs per socket;
// every frame is copied out of it into the normal pool, so it only ever holds
// one burst per queue).
//
// Outputs: port_receive on the same port, in bursts of at most kBurst.
// Drop reasons: rx_truncated (the ring cut it), rx_oversize (bigger than the
//   port's MTU and not TCP: a UDP/other GSO frame sluice cannot cut without
//   its gso_size), nomem (no mbuf for a copy or a segment).
// Counters (per worker; `show port rx-fixup`): completed, gso_frames,
//   gso_segments, copied.
// Log: the first rx_truncated and the first rx_oversize of each port, once,
//   with the fix (from a control-thread timer, never from a worker).
// Config keys: the port's `device` (net_af_packet framesz=, blocksz=, framecnt=).
// CLI: show port rx-fixup [DEV|all].
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <rte_mbuf.h>

#include "core/device.hh"
#include "core/worker.hh"

namespace sluice {

class Dataplane;

namespace rx_csum {

// net_af_packet's ring geometry when the device string gives none: 256
// frames of 65424 bytes in one block (the PMD addresses frame i at i *
// framesz, so blocksz must be a multiple of framesz, and a page multiple;
// 65424 - 32 bytes must fit an mbuf, whose data room is a uint16_t). Frames
// up to 65424 - 66 = 65358 bytes arrive whole; the largest TSO frame Linux
// builds by default (gso_max_size 65536) was 65226 bytes here.
inline constexpr unsigned kFrameSize = 65424;
inline constexpr unsigned kBlockSize = 256 * kFrameSize;  // 16748544, 4089 pages
inline constexpr unsigned kFrameCount = 256;
// TPACKET_V2: a frame's data starts 66 bytes into its ring frame (the 32-byte
// header and sockaddr_ll, aligned, minus the Ethernet header).
inline constexpr unsigned kRingMacOffset = 66;

// The headers of one frame, as far as they are in it.
struct Hdrs {
  uint16_t l2_len = 0;    // Ethernet + in-band VLAN tags
  uint16_t l3_off = 0;    // = l2_len
  uint16_t l4_off = 0;    // after IPv4 options / IPv6 HBH and destination options
  uint32_t ip_end = 0;    // l2_len + the length the IP header claims
  uint8_t ip = 0;         // 4, 6, or 0 (not IP, or its header is not whole)
  uint8_t proto = 0;      // L4 protocol (IPPROTO_*) when ip != 0
  bool fragment = false;  // an IPv4 fragment or an IPv6 fragment header
  bool l4_ok = false;     // a TCP or UDP header that sluice may touch
};
// Parses contiguous frame bytes.
Hdrs parse(const uint8_t* p, uint32_t len);

// not_l4: not a whole, unfragmented TCP/UDP packet; none: UDP/IPv4 without a
// checksum (0); kept: the field is not the pseudo-header sum (a good or a bad
// checksum, not looked at further); good: it is, and also verifies;
// completed: it was partial and now holds the full checksum.
enum class Csum : uint8_t { not_l4, none, kept, good, completed };
const char* csum_name(Csum c);

// skb_checksum_help for one contiguous frame (p, len) whose headers are h.
Csum complete(uint8_t* p, uint32_t len, const Hdrs& h);
// The same on a single-segment mbuf.
Csum complete(rte_mbuf* m);

// tcp_gso_segment into segments whose IP packet is at most mtu bytes, made
// in `pool`: starting at TCP payload offset *off, at most max_out of them,
// *off advanced past what was made. Needs h.ip != 0, proto TCP, m contiguous.
// Returns how many were made; *nomem is set when the pool ran dry.
unsigned segment(const rte_mbuf* m, const Hdrs& h, uint16_t mtu, rte_mempool* pool, uint32_t* off,
                 rte_mbuf** out, unsigned max_out, bool* nomem);

// Per-port state (Device::rx_fixup).
struct alignas(64) FixCounters {
  uint64_t completed, gso_frames, gso_segments, copied;
};

struct RxFixup {
  RxFixup(rte_mempool* normal_pool, rte_mempool* landing_pool, unsigned ring_frame,
          unsigned workers, std::string iface);
  rte_mempool* pool;                   // segments and copies are made here
  rte_mempool* landing;                // frames from this pool are copied into `pool` (may be null)
  uint32_t snap_max;                   // frames this long were cut by the ring (0: never)
  unsigned ring_frame;                 // framesz, for the log
  std::string iface;                   // the kernel interface (iface=), for the log
  std::unique_ptr<FixCounters[]> ctr;  // [nworkers]
  unsigned nworkers = 1;

  // Worker → control thread: the first frame of each kind (logged once).
  enum Seen : uint8_t { kTruncated = 1, kOversize = 2 };
  std::atomic<uint8_t> seen{0};
  std::atomic<uint32_t> trunc_len{0}, trunc_claimed{0}, over_len{0}, over_proto{0};
  uint8_t logged = 0;  // control thread
  FixCounters base{};  // clear stats baseline (control thread)

  FixCounters sum() const;
};

// The receive path of a kernel-peer port (Worker::run calls it instead of
// port_receive when port.rx_fixup is set).
void receive(Worker& w, Device& port, rte_mbuf** pkts, uint16_t n);

// ---- port setup (control thread, src/pmd_glue/pmd.cc) -------------------
// Does this device string name a net_af_packet vdev?
bool is_af_packet(const std::string& devargs);
// The device string to probe: a net_af_packet one without framesz/blocksz/
// framecnt gets sluice's 64 KB ring frames; any other is returned as is.
std::string port_devargs(const std::string& devargs);
// The RX pool for a port: for net_af_packet, a pool whose buffers hold its
// ring frame (made once per socket); otherwise `normal`.
rte_mempool* rx_pool(Dataplane& dp, const std::string& devargs, unsigned socket,
                     rte_mempool* normal);
// After the port's Device exists: sets dev.rx_fixup when the driver needs it
// (net_af_packet), registers the log timer, the counters' clear-stats
// baseline and the landing pools' check at shutdown.
void attach(Dataplane& dp, Device& dev, const std::string& driver, const std::string& devargs,
            rte_mempool* normal, rte_mempool* rx);

// Human text of the log line for a truncated frame (tests read it).
std::string truncated_message(const Device& dev, const RxFixup& f, uint32_t len, uint32_t claimed);

}  // namespace rx_csum
}  // namespace sluice
