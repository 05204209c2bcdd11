// pcapng writer: the file format of `capture start … file PATH` (what
// `tcpdump -w` / dumpcap write). Our own small writer rather than DPDK
// 22.11's rte_pcapng, which writes one IDB per ethdev port at open time
// (sluice's VLAN sub-devices, bonds and bridges are not ethdev ports, and an
// "any" capture adds an interface whenever a new device shows up) and puts
// timestamps in the year 2251 (DPDK-NOTES §2).
//
// Blocks written (pcapng, draft-ietf-opsawg-pcapng):
//   SHB  once, at open: shb_hardware (CPU model), shb_os (uname), shb_userappl
//        ("sluice <version>"), optional opt_comment
//   IDB  per add_interface(): LINKTYPE_ETHERNET (1), snaplen, if_name (the
//        sluice device name), if_description (device kind), if_MACaddr,
//        if_tsresol = 9 (timestamps in nanoseconds)
//   EPB  per packet: interface id, 64-bit ns timestamp, captured / original
//        length, epb_flags direction (inbound = 1, outbound = 2)
//   ISB  per write_stats(): isb_starttime, isb_endtime, isb_ifrecv,
//        isb_ifdrop, isb_usrdeliv, opt_comment
// Host byte order (the SHB's byte-order magic tells readers), every block and
// option padded to 32 bits, writes buffered through a FILE*.
//
// A VLAN tag that sluice holds out of band in the packet metadata
// (kFlagVlan: vlan_proto, vlan_tci) is put back into the written bytes after
// the two MAC addresses, as libpcap/tcpdump shows a tag that the NIC or the
// kernel stripped.
//
// Not thread-safe: one writer thread per file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "core/device.hh"

namespace sluice {

inline constexpr uint16_t kLinktypeEthernet = 1;  // LINKTYPE_ETHERNET (DLT_EN10MB)

struct PcapngInterface {
  std::string name;         // if_name: the sluice device name
  std::string description;  // if_description: the device kind ("port", "vlan", …)
  uint32_t snaplen = 262144;
  uint16_t linktype = kLinktypeEthernet;
  std::optional<rte_ether_addr> mac;  // if_MACaddr
};

// Interface Statistics Block contents. Absent counters are not written.
struct PcapngStats {
  uint64_t start_ns = 0;             // isb_starttime (0: not written)
  uint64_t end_ns = 0;               // isb_endtime (0: not written)
  std::optional<uint64_t> ifrecv;    // isb_ifrecv
  std::optional<uint64_t> ifdrop;    // isb_ifdrop
  std::optional<uint64_t> usrdeliv;  // isb_usrdeliv
  std::string comment;               // opt_comment
};

// CLOCK_REALTIME in nanoseconds since the epoch.
uint64_t realtime_ns();

class PcapngWriter {
 public:
  PcapngWriter() = default;
  ~PcapngWriter();
  PcapngWriter(const PcapngWriter&) = delete;
  PcapngWriter& operator=(const PcapngWriter&) = delete;

  // Creates (or truncates) path and writes the SHB. On failure returns false
  // with *error set, and nothing is left open.
  bool open(const std::string& path, std::string* error, const std::string& comment = {});
  // Same on an already open descriptor, which the writer then owns.
  bool open_fd(int fd, std::string* error, const std::string& comment = {});
  bool is_open() const { return f_ != nullptr; }

  // Writes an IDB; returns its interface id (0, 1, 2, … in call order).
  uint32_t add_interface(const PcapngInterface& itf);
  uint32_t interface_count() const { return static_cast<uint32_t>(snaplen_.size()); }

  // EPB from contiguous bytes; caplen is cut to the interface's snaplen.
  // dir: ingress → inbound, egress → outbound, both → no direction flag.
  void write_packet(uint32_t ifid, uint64_t ts_ns, const void* data, uint32_t caplen,
                    uint32_t origlen, Direction dir);
  // EPB from an mbuf (any number of segments). When meta(m) has kFlagVlan the
  // tag is re-inserted after the MAC addresses. origlen 0 means the mbuf's
  // pkt_len (+4 with a tag); the captured bytes are cut to the snaplen.
  void write_mbuf(uint32_t ifid, uint64_t ts_ns, const rte_mbuf* m, Direction dir,
                  uint32_t origlen = 0);
  // ISB for interface ifid, stamped ts_ns.
  void write_stats(uint32_t ifid, uint64_t ts_ns, const PcapngStats& s);

  // Pushes buffered bytes to the file. false on a write error.
  bool flush();
  // Flushes and closes; false if any write failed. Idempotent.
  bool close();

  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }  // the first write error
  uint64_t packets() const { return packets_; }        // EPBs written
  uint64_t bytes() const { return bytes_; }            // file size so far

 private:
  struct Piece {
    const void* p;
    uint32_t n;
  };
  bool start(FILE* f, std::string* error, const std::string& comment);
  void put(const void* p, size_t n);
  void epb(uint32_t ifid, uint64_t ts_ns, const Piece* pieces, unsigned npieces, uint32_t caplen,
           uint32_t origlen, Direction dir);

  FILE* f_ = nullptr;
  std::vector<uint32_t> snaplen_;  // per interface id
  std::unique_ptr<char[]> buf_;    // the FILE's buffer
  std::vector<uint8_t> blk_;       // scratch for a block under construction
  std::vector<uint8_t> scratch_;   // a multi-segment mbuf, linearised
  bool failed_ = false;
  std::string error_;
  uint64_t packets_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace sluice
