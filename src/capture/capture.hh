// Captures: tcpdump on a sluice device. A capture is a tap (Linux's
// ETH_P_ALL packet_type, dev_add_pack) on one device or on every device
// ("any"), plus a writer thread that turns what the tap copied into pcapng.
//
//   worker:  tap (receive round: ingress; dev_queue_xmit: egress)
//              → direction match → the filter, if any (capture/filter.hh:
//                one JIT run; a packet it rejects costs nothing more: no
//                copy, no ring) → rte_pktmbuf_copy into the capture's own
//                pool, cut to snaplen (the RX pools are never used, so a slow
//                writer cannot starve RX) → copy's private area: device,
//                direction, TSC, VLAN tag, original length
//              → MP/SC rte_ring (never blocks, never locks)
//   writer:  std::thread per capture: dequeue bursts → IDB the first time a
//            device appears in this capture → EPB (TSC → CLOCK_REALTIME ns
//            with a base taken at start) → free the copy; ISBs at the end
//   control: start / stop / list; a 50 ms timer finishes captures whose
//            writer reached `count` or `max_bytes`, and those whose
//            `seconds` are up (Net writers run on the control thread)
//
// A capture without a tap (CaptureOptions::tap = false) is a pcapng sink
// that something else feeds by calling tap() with its ctx (sink()): a
// mirror's `to: {pcapng: PATH}` (src/mirror). It is not listed by `show
// captures` nor stopped by `capture stop`; its owner stops it.
//
// Outputs: a pcapng file per capture (see capture/pcapng.hh).
// Counters (per capture, summed over workers; DPDK pdump's meaning):
//   accepted  packets that matched and were copied (ringfull ones included)
//   filtered  packets rejected by the capture filter
//   nombuf    copies that failed (capture pool empty)
//   ringfull  copies dropped because the ring to the writer was full
//   written   EPBs written to the file
// ISB at close: isb_ifrecv = accepted + filtered + nombuf,
//   isb_ifdrop = nombuf + ringfull, isb_usrdeliv = written on that interface
//   (capture-wide counters go on interface 0's ISB).
// Config keys: none. CLI (capture/commands.cc):
//   capture start DEV|any [ingress|egress|both] [FILTER] file PATH [count N]
//                 [snaplen N] [seconds N]
//   capture stop [ID]
//   show captures
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/filter.hh"
#include "core/device.hh"

struct rte_mempool;
struct rte_ring;

namespace sluice {

class Dataplane;
struct Worker;

inline constexpr uint32_t kCaptureSnaplenDefault = 262144;  // tcpdump's default
inline constexpr uint32_t kCaptureSnaplenMax = 65535;       // a whole GSO/jumbo frame
// Data room of a copy's segments: copies of long frames are chains, so a
// capture's pool stays small (~10 MB) whatever the snaplen.
inline constexpr uint16_t kCaptureSegRoom = 2048;
inline constexpr uint32_t kCaptureSnaplenMin = 16;
inline constexpr unsigned kCaptureRingSize = 4096;
inline constexpr unsigned kCaptureMaxWorkers = 64;  // worker ids are RCU thread ids (< 64)

struct CaptureOptions {
  std::string dev;  // a device name or "any"
  Direction dir = Direction::both;
  std::string path;
  uint64_t count = 0;                         // stop after this many packets are written (0: never)
  uint32_t snaplen = kCaptureSnaplenDefault;  // effective: min(snaplen, kCaptureSnaplenMax)
  unsigned ring_size = kCaptureRingSize;      // ring entries (exact)
  unsigned pool_size = 0;                     // copies in the pool; 0: ring_size + 511
  std::string filter;                         // pcap-filter(7); "" = every packet
  uint64_t seconds = 0;                       // stop after this long (0: never)
  uint64_t max_bytes = 0;                     // stop before the file grows past this (0: no limit)
  bool tap = true;                            // false: a sink fed through tap() by its owner
  std::string label;                          // the file's comment names this instead of the device
};

struct CaptureInfo {
  uint32_t id = 0;
  std::string dev;
  Direction dir = Direction::both;
  std::string file;
  uint64_t count = 0;
  uint32_t snaplen = 0;
  std::string filter;
  std::string filter_engine;  // "jit" | "rte_bpf" | "libpcap" (PacketFilter::on_libpcap), "" = none
  uint64_t seconds = 0;
  uint64_t accepted = 0, filtered = 0, nombuf = 0, ringfull = 0, written = 0;
  bool running = false;
  std::string error;  // a write error, if one happened
};

const char* direction_name(Direction d);

class CaptureManager {
 public:
  explicit CaptureManager(Dataplane& dp);
  ~CaptureManager();
  CaptureManager(const CaptureManager&) = delete;
  CaptureManager& operator=(const CaptureManager&) = delete;

  // Control thread. Returns the capture id (> 0), or 0 with *error set and
  // nothing registered (unknown device, file that cannot be opened, bad
  // option, out of memory). Forgets captures that have finished.
  uint32_t start(const CaptureOptions& opt, std::string* error);
  // Removes the tap (after an RCU grace period no worker is inside it),
  // writes out what the ring still holds, the ISBs, closes the file and joins
  // the writer. false if no running capture has that id.
  // A sink is stopped only when `sinks` is set (by its owner, after no
  // worker can call tap() with it any more).
  bool stop(uint32_t id, bool sinks = false);
  // Stops every running capture (and the sinks when asked); returns how many.
  unsigned stop_all(bool sinks = false);
  // Running and finished (not yet forgotten) captures, by id; sinks only
  // when asked.
  std::vector<CaptureInfo> list(bool sinks = false) const;
  // One capture (running or finished, sink or not); false if unknown.
  bool info(uint32_t id, CaptureInfo* out) const;
  // The ctx to pass to tap() for a running capture (a sink), or nullptr.
  void* sink(uint32_t id) const;
  // The timer body: finishes captures whose writer is done (count reached or
  // write error). Called every 50 ms from the control thread.
  void poll();

  // The TapFn of every capture (ctx = the capture).
  static void tap(Worker& w, const Device& dev, void* ctx, rte_mbuf* const* pkts, uint16_t n,
                  Direction dir) {
    feed(w, dev, ctx, pkts, n, dir);
  }
  // What tap does; returns how many packets were queued for the writer (a
  // sink's owner counts the rest as failed copies).
  static uint16_t feed(Worker& w, const Device& dev, void* ctx, rte_mbuf* const* pkts, uint16_t n,
                       Direction dir);

  struct Capture;

 private:
  void finish(Capture& c);

  Dataplane& dp_;
  std::vector<std::unique_ptr<Capture>> caps_;
  uint32_t next_id_ = 1;
};

}  // namespace sluice
