// The IP MIB (Linux's /proc/net/snmp and netstat names: Ip, IpExt, Icmp,
// Ip6, Icmp6, Tcp): one block per device per worker, plain counters only
// their worker writes (WorkerL3::mib), summed on read for `show ip stats`.
#pragma once

#include <cstdint>
#include <vector>

namespace sluice::l3 {

// clang-format off
#define SLUICE_IP_MIB(X) \
  X(InReceives) \
  X(InHdrErrors) \
  X(InAddrErrors) \
  X(ForwDatagrams) \
  X(InUnknownProtos) \
  X(InDiscards) \
  X(InDelivers) \
  X(OutRequests) \
  X(OutDiscards) \
  X(OutNoRoutes) \
  X(ReasmReqds) \
  X(FragOKs) \
  X(FragFails) \
  X(FragCreates) \
  X(InNoRoutes) \
  X(InTruncatedPkts) \
  X(InMcastPkts) \
  X(OutMcastPkts) \
  X(InBcastPkts) \
  X(OutBcastPkts) \
  X(InOctets) \
  X(OutOctets) \
  X(InCsumErrors) \
  X(InNoECTPkts) \
  X(InECT1Pkts) \
  X(InECT0Pkts) \
  X(InCEPkts) \
  X(IcmpInMsgs) \
  X(IcmpInErrors) \
  X(IcmpInCsumErrors) \
  X(IcmpInDestUnreachs) \
  X(IcmpInTimeExcds) \
  X(IcmpInEchos) \
  X(IcmpInEchoReps) \
  X(IcmpOutMsgs) \
  X(IcmpOutRateLimitGlobal) \
  X(IcmpOutRateLimitHost) \
  X(IcmpOutDestUnreachs) \
  X(IcmpOutTimeExcds) \
  X(IcmpOutEchoReps) \
  X(Ip6InReceives) \
  X(Ip6InHdrErrors) \
  X(Ip6InTruncatedPkts) \
  X(Ip6InNoRoutes) \
  X(Ip6InAddrErrors) \
  X(Ip6InDelivers) \
  X(Ip6OutForwDatagrams) \
  X(Ip6OutRequests) \
  X(Ip6InTooBigErrors) \
  X(Ip6InMcastPkts) \
  X(Icmp6InMsgs) \
  X(Icmp6InErrors) \
  X(Icmp6InEchos) \
  X(Icmp6InNeighborSolicits) \
  X(Icmp6InNeighborAdvertisements) \
  X(Icmp6OutMsgs) \
  X(Icmp6OutEchoReplies) \
  X(Icmp6OutNeighborAdvertisements) \
  X(Icmp6OutNeighborSolicits) \
  X(Icmp6OutTimeExcds) \
  X(Icmp6OutDestUnreachs) \
  X(Icmp6OutPktTooBigs) \
  X(TcpOutRsts) \
  X(TcpInCsumErrors)
// clang-format on

enum class Mib : uint8_t {
#define SLUICE_MIB_ENUM(n) n,
  SLUICE_IP_MIB(SLUICE_MIB_ENUM)
#undef SLUICE_MIB_ENUM
      count_
};
inline constexpr unsigned kNumMib = static_cast<unsigned>(Mib::count_);
const char* mib_name(Mib m);
struct MibBlock {
  uint64_t v[kNumMib];
  uint64_t& operator[](Mib m) { return v[static_cast<unsigned>(m)]; }
  uint64_t operator[](Mib m) const { return v[static_cast<unsigned>(m)]; }
};

// The MIB as `show ip stats` reads it: a device's blocks summed over the
// workers, minus the baseline taken by the last clear() (`clear stats`: the
// workers' own blocks are never written from outside).
class MibTotals {
 public:
  // A worker's blocks, [kMaxDevices] of them (they outlive this object's use).
  void add_worker(const MibBlock* blocks) { workers_.push_back(blocks); }
  MibBlock operator()(uint16_t dev) const;  // since the last clear()
  void clear();

 private:
  MibBlock raw(uint16_t dev) const;
  std::vector<const MibBlock*> workers_;
  std::vector<MibBlock> base_;  // [kMaxDevices] once cleared
};

}  // namespace sluice::l3
