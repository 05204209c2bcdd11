#include "capture/filter.hh"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include <rte_bpf.h>
#include <rte_errno.h>
#include <rte_malloc.h>

namespace sluice {
namespace {

// What pcap_compile gets: Ethernet, the largest snaplen (the match result,
// the snap length, is not used: a match is any non-zero return).
constexpr int kSnaplen = 262144;
// Bytes of a tagged frame copied (tag inserted) for a filter run; the rest
// of the frame is read from the mbuf through a second, borrowed segment.
constexpr uint32_t kTaggedHead = 128;

// libpcap 1.10 serialises pcap_compile itself, but older ones did not: the
// control thread is the only caller in sluiced, tests may use threads.
std::mutex g_pcap_mu;

// Compiles expr into prog; "" or libpcap's message.
std::string pcap_build(const std::string& expr, bpf_program* prog) {
  std::lock_guard<std::mutex> lk(g_pcap_mu);
  pcap_t* p = pcap_open_dead(DLT_EN10MB, kSnaplen);
  if (p == nullptr) return "cannot open a libpcap handle";
  std::string err;
  if (pcap_compile(p, prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    err = pcap_geterr(p);
    if (err.empty()) err = "bad filter expression";
  }
  pcap_close(p);
  return err;
}

// Two bugs of DPDK's BPF library (22.11, and upstream as of this writing)
// that would make libpcap's programs wrong or crash, repaired on the
// converted program before it is loaded:
//  1. rte_bpf_convert gives cBPF's indirect loads (`ldb [x + k]`, every
//     access to a TCP/UDP field after a variable IPv4 header) src_reg 0
//     (A) instead of X: the offset is then the last value loaded (the
//     fragment field, 0x4000 with DF set), so `tcp port 80` misses real
//     traffic. Fixed: src_reg = X (r7).
//  2. the x86-64 JIT writes `test $imm, %reg` (JSET with an immediate) with
//     an 8-bit immediate when the value fits, but that opcode (F7 /0) takes
//     32 bits: the next instruction bytes are eaten and the code crashes
//     (`tcp[13] & 2 != 0`). Fixed: JSET #k with a small k becomes
//     `mov32 r8, #k; jset rA, r8` (r8 is the converter's scratch register,
//     dead at a jump), jump offsets adjusted.
constexpr uint8_t kEbpfRegX = 7, kEbpfRegTmp = 8;

std::vector<ebpf_insn> repair(const ebpf_insn* in, uint32_t n) {
  auto small_jset = [](const ebpf_insn& i) {
    return i.code == (BPF_JMP | BPF_JSET | BPF_K) && i.imm == static_cast<int8_t>(i.imm);
  };
  std::vector<uint32_t> pos(n + 1);  // old index → new index
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) {
    pos[i] = k;
    k += small_jset(in[i]) ? 2 : 1;
  }
  pos[n] = k;
  std::vector<ebpf_insn> out;
  out.reserve(k);
  for (uint32_t i = 0; i < n; i++) {
    ebpf_insn x = in[i];
    if (BPF_CLASS(x.code) == BPF_LD && BPF_MODE(x.code) == BPF_IND) x.src_reg = kEbpfRegX;
    if (small_jset(x)) {
      ebpf_insn mov{};
      mov.code = BPF_ALU | EBPF_MOV | BPF_K;
      mov.dst_reg = kEbpfRegTmp;
      mov.imm = x.imm;
      out.push_back(mov);
      x.code = BPF_JMP | BPF_JSET | BPF_X;
      x.src_reg = kEbpfRegTmp;
      x.imm = 0;
    }
    const uint8_t op = BPF_OP(x.code);
    if (BPF_CLASS(x.code) == BPF_JMP && op != EBPF_CALL && op != EBPF_EXIT) {
      int64_t target = static_cast<int64_t>(i) + 1 + x.off;
      if (target >= 0 && target <= static_cast<int64_t>(n)) {
        int64_t here = static_cast<int64_t>(out.size());  // the jump's new index
        x.off = static_cast<int16_t>(static_cast<int64_t>(pos[target]) - here - 1);
      }
    }
    out.push_back(x);
  }
  return out;
}

}  // namespace

std::string filter_check(const std::string& expr) {
  bpf_program prog{};
  std::string err = pcap_build(expr, &prog);
  if (err.empty()) pcap_freecode(&prog);
  return err;
}

std::unique_ptr<PacketFilter> PacketFilter::compile(const std::string& expr, std::string* error) {
  auto fail = [error](std::string msg) {
    if (error) *error = std::move(msg);
    return std::unique_ptr<PacketFilter>();
  };
  bpf_program prog{};
  if (std::string e = pcap_build(expr, &prog); !e.empty()) return fail(e);
  std::unique_ptr<PacketFilter> f(new PacketFilter());
  f->expr_ = expr;
  f->cbpf_insns_ = prog.bf_len;
  rte_bpf_prm* prm = rte_bpf_convert(&prog);
  pcap_freecode(&prog);
  if (prm == nullptr)
    return fail(std::string("cannot convert the filter to eBPF: ") + rte_strerror(rte_errno));
  std::vector<ebpf_insn> ins = repair(prm->ins, prm->nb_ins);
  rte_bpf_prm fixed = *prm;
  fixed.ins = ins.data();
  fixed.nb_ins = static_cast<uint32_t>(ins.size());
  f->bpf_ = rte_bpf_load(&fixed);  // copies the instructions
  rte_free(prm);
  if (f->bpf_ == nullptr)
    return fail(std::string("the eBPF verifier refused the filter: ") + rte_strerror(rte_errno));
  rte_bpf_jit jit{};
  if (rte_bpf_get_jit(f->bpf_, &jit) == 0 && jit.func != nullptr) f->jit_ = jit.func;
  return f;
}

PacketFilter::~PacketFilter() {
  if (bpf_ != nullptr) rte_bpf_destroy(bpf_);
}

uint64_t PacketFilter::run_interpreter(const rte_mbuf* m) const {
  return rte_bpf_exec(bpf_, const_cast<rte_mbuf*>(m));
}

uint64_t PacketFilter::run(const rte_mbuf* m) const {
  void* ctx = const_cast<rte_mbuf*>(m);
  return jit_ != nullptr ? jit_(ctx) : rte_bpf_exec(bpf_, ctx);
}

// The frame with its metadata tag back after the MAC addresses, without
// touching the packet: a stack mbuf whose segment is a copy of the first
// bytes with the tag inserted, chained to a borrowed view of the rest (the
// converted program reads past the first segment through
// __rte_pktmbuf_read, which follows next).
bool PacketFilter::match_tagged(const rte_mbuf* m) const {
  const PktMeta& md = meta(m);
  if (m->data_len < 12) return run(m) != 0;
  alignas(RTE_CACHE_LINE_SIZE) uint8_t buf[kTaggedHead + 4];
  const uint8_t* p = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t hl = std::min<uint32_t>(m->data_len, kTaggedHead);
  std::memcpy(buf, p, 12);
  buf[12] = static_cast<uint8_t>(md.vlan_proto >> 8);
  buf[13] = static_cast<uint8_t>(md.vlan_proto);
  buf[14] = static_cast<uint8_t>(md.vlan_tci >> 8);
  buf[15] = static_cast<uint8_t>(md.vlan_tci);
  std::memcpy(buf + 16, p + 12, hl - 12);

  rte_mbuf head{};
  rte_mbuf rest{};
  head.buf_addr = buf;
  head.data_off = 0;
  head.buf_len = sizeof(buf);
  head.data_len = static_cast<uint16_t>(hl + 4);
  head.pkt_len = m->pkt_len + 4;
  head.nb_segs = m->nb_segs;
  head.next = m->next;
  if (hl < m->data_len) {
    rest.buf_addr = m->buf_addr;
    rest.buf_len = m->buf_len;
    rest.data_off = static_cast<uint16_t>(m->data_off + hl);
    rest.data_len = static_cast<uint16_t>(m->data_len - hl);
    rest.next = m->next;
    head.next = &rest;
    head.nb_segs = static_cast<uint16_t>(m->nb_segs + 1);
  }
  return run(&head) != 0;
}

}  // namespace sluice
