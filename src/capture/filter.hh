// Packet filters: a pcap-filter(7) expression compiled by libpcap
// (pcap_compile for DLT_EN10MB, as dpdk-dumpcap does), converted to eBPF
// (rte_bpf_convert), verified and loaded (rte_bpf_load) and, on x86-64,
// JIT-compiled (rte_bpf_get_jit). Shared by captures (capture start … FILTER)
// and mirrors (mirrors: filter:).
//
// What the expression sees is the frame as it is on the wire and in a
// capture file: a VLAN tag that sluice holds in the packet metadata
// (kFlagVlan: taken out by the receive round's vlan_untag, or put there by a
// VLAN device's xmit) is put back after the MAC addresses for the run, so
// `vlan 100 and tcp port 80` matches a frame tagged 100 on the port it
// arrives on or leaves through, as libpcap's `vlan` keyword expects (it
// reads the tag from the data: a filter compiled offline has no Linux
// ancillary loads). On a VLAN sub-device the tag is gone (the frame is
// untagged there), as tcpdump on eth0.100 sees it.
//
// Cost: one JIT call per packet (a few ns): the direct-load program, which
// reads the first segment straight (see direct_loads in filter.cc), and the
// full program only for what it cannot decide (a load past the first
// segment); a tagged frame adds a copy of its first 128 bytes into a stack
// buffer. No allocation, no lock.
//
// A program of more than kMaxVerifiedInsns cBPF instructions is not given
// to DPDK's verifier, whose time grows steeply with such programs (seconds,
// then far longer, for a few hundred instructions of some shapes: found by
// fuzz_filter); it runs on libpcap's own interpreter (bpf_filter), on the
// frame's first segment or, for a chain, on a per-thread copy of it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_mbuf.h>

#include "core/meta.hh"

struct rte_bpf;

namespace sluice {

// Compiles with libpcap only (no EAL needed: `sluiced --check` uses it).
// Returns "" when the expression is good, else libpcap's message.
std::string filter_check(const std::string& expr);

class PacketFilter {
 public:
  // Compiles, converts, loads and JITs expr (the EAL must be up: the
  // conversion allocates with rte_malloc). nullptr with *error on failure
  // (libpcap's message for a bad expression).
  static std::unique_ptr<PacketFilter> compile(const std::string& expr, std::string* error);
  ~PacketFilter();
  PacketFilter(const PacketFilter&) = delete;
  PacketFilter& operator=(const PacketFilter&) = delete;

  bool match(const rte_mbuf* m) const {
    if (meta(m).flags & kFlagVlan) [[unlikely]]
      return match_tagged(m);
    return (direct_ != nullptr ? run_direct(m) : run(m)) != 0;
  }
  // Writes the packets of in[0..n) that match to out; returns how many.
  uint16_t select(rte_mbuf* const* in, uint16_t n, rte_mbuf** out) const {
    uint16_t k = 0;
    if (auto* d = direct_) {  // the usual case, one indirect call per packet
      for (uint16_t i = 0; i < n; i++) {
        rte_mbuf* m = in[i];
        out[k] = m;
        uint64_t r;
        if (!(meta(m).flags & kFlagVlan)) [[likely]] {
          r = d(m);
          if (r == kNeedsFullRun) [[unlikely]]
            r = run(m);
        } else {
          r = match_tagged(m);
        }
        k += r != 0 ? 1 : 0;
      }
      return k;
    }
    for (uint16_t i = 0; i < n; i++) {
      out[k] = in[i];
      k += match(in[i]) ? 1 : 0;
    }
    return k;
  }

  const std::string& expr() const { return expr_; }
  bool jitted() const { return jit_ != nullptr; }
  // Whether the program runs on libpcap's interpreter (too long for DPDK's
  // verifier) instead of rte_bpf.
  bool on_libpcap() const { return bpf_ == nullptr; }
  // What runs it: "jit", "rte_bpf" (the interpreter) or "libpcap".
  const char* engine() const { return on_libpcap() ? "libpcap" : jitted() ? "jit" : "rte_bpf"; }
  static constexpr unsigned kMaxVerifiedInsns = 200;
  unsigned cbpf_insns() const { return cbpf_insns_; }
  // The same program on rte_bpf's interpreter (tests compare it with the
  // JIT); libpcap's for a program on_libpcap().
  uint64_t run_interpreter(const rte_mbuf* m) const;
  // Whether the direct-load program exists (a program with packet loads
  // that the rewrite takes), and the two programs on their own (tests):
  // run_direct_only gives kNeedsFullRun where it cannot decide.
  bool direct() const { return direct_ != nullptr; }
  uint64_t run_direct_only(const rte_mbuf* m) const { return direct_(const_cast<rte_mbuf*>(m)); }
  uint64_t run_full_program(const rte_mbuf* m) const;
  static constexpr uint64_t kNeedsFullRun = ~uint64_t(0);

 private:
  PacketFilter() = default;
  uint64_t run(const rte_mbuf* m) const;
  uint64_t run_direct(const rte_mbuf* m) const {
    uint64_t r = direct_(const_cast<rte_mbuf*>(m));
    if (r == kNeedsFullRun) [[unlikely]]
      r = run(m);
    return r;
  }
  bool match_tagged(const rte_mbuf* m) const;
  uint64_t run_libpcap(const rte_mbuf* m) const;

  std::string expr_;
  std::vector<uint64_t>
      cbpf_;  // libpcap's program (struct bpf_insn, 8 bytes each) when on_libpcap()
  rte_bpf* bpf_ = nullptr;
  uint64_t (*jit_)(void*) = nullptr;
  rte_bpf* direct_bpf_ = nullptr;
  uint64_t (*direct_)(void*) = nullptr;
  unsigned cbpf_insns_ = 0;
};

}  // namespace sluice
