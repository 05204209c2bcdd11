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

// Four bugs of DPDK's BPF library (22.11, and upstream as of this writing)
// that would make libpcap's programs wrong or crash, repaired on the
// programs before they are loaded:
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
//  3. the x86-64 JIT puts its epilogue at the first `exit` and turns every
//     later `exit` (and the divide-by-zero and failed-load exits) into a
//     jump back to it, choosing the 8-bit form from the distance measured
//     before the jump instead of after it: a jump that lands 129 or 130
//     bytes back is written as rel8 and wraps forward, past the code (a
//     long `ether[78] % ...` chain, found by fuzz_filter). Jumps forward
//     are sized correctly. Fixed (single_exit): every `exit` but the last
//     instruction becomes a jump to it, so the epilogue is the code's end
//     and every jump to it goes forward.
//  4. a packet load's offset (X + k, or k) goes to __rte_pktmbuf_read as
//     32 bits, which checks `off + len > pkt_len` in 32 bits too: an offset
//     near 2^32 (`ether[ether[0] - 1]` on a frame starting with 0) wraps
//     past the check and the segment walk runs off the chain (SEGV, found
//     by fuzz_filter). libpcap says such a load rejects the frame. Fixed:
//     a load whose k exceeds kMaxLoadOffset returns 0, and every indirect
//     load first returns 0 when X exceeds it; below it nothing can wrap
//     (2 × 2^24 + 4 < 2^32) and no frame is that long.
//  5. the x86-64 JIT sizes its jumps in dry runs and stops when the code's
//     total size repeats, not when every instruction's offset does: a jump
//     that changes between rel8 and rel32 while another moves the other way
//     leaves the final code with jumps to the old offsets — mid-instruction,
//     or onto the jump itself (`jmp .`, a worker spinning forever; found by
//     fuzz_filter: `vlan 00 and tcp port 13100 and --------ether[78]----
//     ether[78]= 1`). Not repairable on the program: jit_is_sound() decodes
//     the generated code and refuses it unless every jump goes forward to
//     the start of an instruction; a refused program runs on rte_bpf's
//     interpreter (the full one) or not at all (the direct one).
constexpr uint8_t kEbpfRegX = 7, kEbpfRegTmp = 8;
constexpr uint32_t kMaxLoadOffset = 0x00ffffff;

ebpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  ebpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

uint32_t load_size(uint8_t code) {
  switch (BPF_SIZE(code)) {
    case BPF_W:
      return 4;
    case BPF_H:
      return 2;
    default:
      return 1;
  }
}

bool is_packet_load(const ebpf_insn& i) {
  return BPF_CLASS(i.code) == BPF_LD &&
         (BPF_MODE(i.code) == BPF_ABS || BPF_MODE(i.code) == BPF_IND);
}

std::vector<ebpf_insn> repair(const ebpf_insn* in, uint32_t n) {
  auto small_jset = [](const ebpf_insn& i) {
    return i.code == (BPF_JMP | BPF_JSET | BPF_K) && i.imm == static_cast<int8_t>(i.imm);
  };
  auto far_load = [](const ebpf_insn& i) {
    return is_packet_load(i) && static_cast<uint32_t>(i.imm) > kMaxLoadOffset;
  };
  // How many instructions each one becomes: bug 2's JSET two; bug 4's far
  // load three (A = 0, a jump never taken, exit); an indirect load four
  // (the check of X, A = 0, exit, the load).
  auto width = [&](const ebpf_insn& i) -> uint32_t {
    if (far_load(i)) return 3;
    if (small_jset(i)) return 2;
    if (is_packet_load(i) && BPF_MODE(i.code) == BPF_IND) return 4;
    return 1;
  };
  std::vector<uint32_t> pos(n + 1);  // old index → new index
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) {
    pos[i] = k;
    k += width(in[i]);
  }
  pos[n] = k;
  std::vector<ebpf_insn> out;
  out.reserve(k);
  const ebpf_insn zero_a =
      insn(BPF_ALU | EBPF_MOV | BPF_K, 0, 0, 0, 0);  // the frame does not match
  const ebpf_insn exit = insn(BPF_JMP | EBPF_EXIT, 0, 0, 0, 0);
  for (uint32_t i = 0; i < n; i++) {
    ebpf_insn x = in[i];
    if (far_load(x)) {
      // A = 0 and exit; the jump that never goes keeps the rest reachable
      // for the verifier, which refuses unreachable instructions.
      out.insert(out.end(), {zero_a, insn(BPF_JMP | EBPF_JNE | BPF_K, 0, 0, 1, 0)});
      x = exit;
    } else if (is_packet_load(x) && BPF_MODE(x.code) == BPF_IND) {
      x.src_reg = kEbpfRegX;
      // X within bounds: over the two that return 0.
      const ebpf_insn near =
          insn(BPF_JMP | EBPF_JLE | BPF_K, kEbpfRegX, 0, 2, static_cast<int32_t>(kMaxLoadOffset));
      out.insert(out.end(), {near, zero_a, exit});
    }
    if (small_jset(x)) {
      out.push_back(insn(BPF_ALU | EBPF_MOV | BPF_K, kEbpfRegTmp, 0, 0, x.imm));
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

// Bug 3: every `exit` but the last instruction becomes `ja` to the last,
// which is an `exit` (the converter's programs end with one; one is added
// otherwise). A program too long for 16-bit jump offsets is left alone.
std::vector<ebpf_insn> single_exit(std::vector<ebpf_insn> ins) {
  const auto is_exit = [](const ebpf_insn& x) { return x.code == (BPF_JMP | EBPF_EXIT); };
  if (ins.empty() || !is_exit(ins.back())) ins.push_back(insn(BPF_JMP | EBPF_EXIT, 0, 0, 0, 0));
  const size_t last = ins.size() - 1;
  if (last > static_cast<size_t>(INT16_MAX)) return ins;
  for (size_t i = 0; i < last; i++) {
    if (!is_exit(ins[i])) continue;
    ins[i].code = BPF_JMP | BPF_JA;
    ins[i].off = static_cast<int16_t>(last - i - 1);
  }
  return ins;
}

// ---- the direct-load program --------------------------------------------------------------
// rte_bpf's JIT compiles each packet load (LD_ABS / LD_IND) into a bounds
// check plus a call-capable path through __rte_pktmbuf_read, and keeps the
// converter's registers (ctx in r6, X in r7, scratch in r8: callee-saved on
// x86-64, pushed and popped on every run). For the filters an operator
// writes, most of a run is that. direct_loads() rewrites the converted
// program into one that reads the first segment straight:
//   prologue  r2 = buf_addr + data_off (the frame), r3 = data_len, and one
//             check that the frame holds every absolute load that lies in
//             the first 60 bytes (the shortest Ethernet frame);
//   LD_ABS    ldx from r2 + k (one more check only for loads beyond those);
//   LD_IND    X and X + k + size checked against r3, then ldx from r2 + X + k;
//   registers X → r1, scratch → r4 (caller-saved), ctx kept in r6 only when
//             the program reads it (`len`).
// Whatever the direct program cannot decide — a load past the first
// segment or the frame, a huge X — exits with kNeedsFullRun and the packet
// runs the full program, which gives libpcap's answer in every case.
constexpr uint8_t kRegCtx = 6;
constexpr uint8_t kDirX = 1, kDirTmp = 4, kRegData = 2, kRegLen = 3, kRegTmp2 = 5;
constexpr uint32_t kPrologueSpan = 60;
constexpr int32_t kMaxIndOffset = 0x7fff;  // X is capped at this (else: full run)

// repair()'s `if X <= kMaxLoadOffset skip 2` before an indirect load.
bool is_x_check(const ebpf_insn& i) {
  return i.code == (BPF_JMP | EBPF_JLE | BPF_K) && i.dst_reg == kEbpfRegX &&
         i.imm == static_cast<int32_t>(kMaxLoadOffset) && i.off == 2;
}

// The rewritten program, or empty when this program does not fit the scheme
// (then only the full program runs).
std::vector<ebpf_insn> direct_loads(const std::vector<ebpf_insn>& in) {
  const uint32_t n = static_cast<uint32_t>(in.size());
  // The converter's prologue: A ^= A, X ^= X, r6 = r1.
  if (n < 4 || in[0].code != (EBPF_ALU64 | BPF_XOR | BPF_X) || in[0].dst_reg != 0 ||
      in[1].code != (EBPF_ALU64 | BPF_XOR | BPF_X) || in[1].dst_reg != kEbpfRegX ||
      in[2].code != (EBPF_ALU64 | EBPF_MOV | BPF_X) || in[2].dst_reg != kRegCtx ||
      in[2].src_reg != 1)
    return {};
  bool loads = false, ctx = false;
  uint32_t span = 0;  // the prologue's check: every absolute load within kPrologueSpan
  for (uint32_t i = 3; i < n; i++) {
    const ebpf_insn& x = in[i];
    if (is_packet_load(x)) {
      loads = true;
      if (x.imm < 0 || x.imm > kMaxIndOffset) return {};
      const uint32_t end = static_cast<uint32_t>(x.imm) + load_size(x.code);
      if (BPF_MODE(x.code) == BPF_ABS && end <= kPrologueSpan) span = std::max(span, end);
      continue;
    }
    if (BPF_CLASS(x.code) == BPF_JMP && BPF_OP(x.code) == EBPF_CALL) return {};
    for (const uint8_t r : {uint8_t{x.dst_reg}, uint8_t{x.src_reg}}) {
      if (r >= 1 && r <= 5) return {};  // the registers the rewrite takes
      if (r == kRegCtx) ctx = true;
    }
  }
  if (!loads) return {};  // nothing to gain (less / greater)

  // Each output instruction with what its jump offset points at.
  enum class To : uint8_t { none, old, slow };
  struct Out {
    ebpf_insn x;
    To to;
    uint32_t target;
  };
  std::vector<Out> out;
  std::vector<uint32_t> pos(n + 1, 0);
  auto emit = [&](ebpf_insn x, To to = To::none, uint32_t target = 0) {
    out.push_back({x, to, target});
  };
  auto rename = [](uint8_t r) -> uint8_t {
    return r == kEbpfRegX ? kDirX : r == kEbpfRegTmp ? kDirTmp : r;
  };
  const auto ldx = [](uint8_t size) { return static_cast<uint8_t>(BPF_LDX | BPF_MEM | size); };
  emit(insn(ldx(EBPF_DW), kRegData, 1, offsetof(rte_mbuf, buf_addr), 0));
  emit(insn(ldx(BPF_H), kRegLen, 1, offsetof(rte_mbuf, data_off), 0));
  emit(insn(EBPF_ALU64 | BPF_ADD | BPF_X, kRegData, kRegLen, 0, 0));
  emit(insn(ldx(BPF_H), kRegLen, 1, offsetof(rte_mbuf, data_len), 0));
  if (ctx) emit(insn(EBPF_ALU64 | EBPF_MOV | BPF_X, kRegCtx, 1, 0, 0));
  if (span != 0)
    emit(insn(BPF_JMP | EBPF_JLT | BPF_K, kRegLen, 0, 0, static_cast<int32_t>(span)), To::slow);
  emit(insn(EBPF_ALU64 | EBPF_MOV | BPF_K, 0, 0, 0, 0));      // A = 0
  emit(insn(EBPF_ALU64 | EBPF_MOV | BPF_K, kDirX, 0, 0, 0));  // X = 0
  // The slow exit (r0 = kNeedsFullRun) goes before the program's last
  // `ret #k` when it ends with one (libpcap puts `ret #0` last): the frames
  // that do not match then fall into the epilogue without a jump.
  const auto is_ret = [](const ebpf_insn& x) {
    return (x.code == (BPF_ALU | EBPF_MOV | BPF_K) || x.code == (EBPF_ALU64 | EBPF_MOV | BPF_K)) &&
           x.dst_reg == 0;
  };
  const bool slow_inside = n >= 5 && is_ret(in[n - 2]) && in[n - 1].code == (BPF_JMP | EBPF_EXIT);
  uint32_t slow = 0;
  for (uint32_t i = 3; i < n; i++) {
    if (slow_inside && i == n - 2) {
      slow = static_cast<uint32_t>(out.size());
      emit(insn(EBPF_ALU64 | EBPF_MOV | BPF_K, 0, 0, 0, -1));
      emit(insn(BPF_JMP | BPF_JA, 0, 0, 0, 0), To::old, n - 1);
    }
    pos[i] = static_cast<uint32_t>(out.size());
    ebpf_insn x = in[i];
    if (i + 3 < n && is_x_check(x) && is_packet_load(in[i + 3])) {
      // repair()'s check of X before an indirect load (bug 4): the direct
      // load below checks X tighter, so the three are left out.
      pos[i + 1] = pos[i + 2] = pos[i];
      i += 2;
      continue;
    }
    if (is_packet_load(x)) {
      const uint32_t size = load_size(x.code);
      const uint8_t sz = static_cast<uint8_t>(BPF_SIZE(x.code));
      const int32_t k = x.imm;
      if (BPF_MODE(x.code) == BPF_ABS) {
        const uint32_t end = static_cast<uint32_t>(k) + size;
        if (end > span)
          emit(insn(BPF_JMP | EBPF_JLT | BPF_K, kRegLen, 0, 0, static_cast<int32_t>(end)),
               To::slow);
        emit(insn(ldx(sz), 0, kRegData, static_cast<int16_t>(k), 0));
      } else {
        // r5 = (X & cap) + k, checked with the size against r3; r0 = r2 + r5.
        emit(insn(BPF_JMP | BPF_JGT | BPF_K, kDirX, 0, 0, kMaxIndOffset), To::slow);
        emit(insn(EBPF_ALU64 | EBPF_MOV | BPF_X, kRegTmp2, kDirX, 0, 0));
        emit(insn(EBPF_ALU64 | BPF_AND | BPF_K, kRegTmp2, 0, 0, kMaxIndOffset));
        emit(insn(EBPF_ALU64 | BPF_ADD | BPF_K, kRegTmp2, 0, 0, k));
        emit(insn(EBPF_ALU64 | EBPF_MOV | BPF_X, 0, kRegTmp2, 0, 0));
        emit(insn(EBPF_ALU64 | BPF_ADD | BPF_K, 0, 0, 0, static_cast<int32_t>(size)));
        emit(insn(BPF_JMP | BPF_JGT | BPF_X, 0, kRegLen, 0, 0), To::slow);
        emit(insn(EBPF_ALU64 | EBPF_MOV | BPF_X, 0, kRegData, 0, 0));
        emit(insn(EBPF_ALU64 | BPF_ADD | BPF_X, 0, kRegTmp2, 0, 0));
        emit(insn(ldx(sz), 0, 0, 0, 0));
      }
      if (size > 1)  // cBPF loads are big-endian
        emit(insn(BPF_ALU | EBPF_END | EBPF_TO_BE, 0, 0, 0, static_cast<int32_t>(size * 8)));
      continue;
    }
    x.dst_reg = rename(x.dst_reg) & 0xf;
    x.src_reg = rename(x.src_reg) & 0xf;
    const uint8_t op = BPF_OP(x.code);
    if (BPF_CLASS(x.code) == BPF_JMP && op != EBPF_CALL && op != EBPF_EXIT) {
      const int64_t t = static_cast<int64_t>(i) + 1 + x.off;
      if (t < 3 || t > static_cast<int64_t>(n)) return {};
      emit(x, To::old, static_cast<uint32_t>(t));
    } else {
      emit(x);
    }
  }
  pos[n] = static_cast<uint32_t>(out.size());
  if (!slow_inside) slow = pos[n];
  std::vector<ebpf_insn> res;
  res.reserve(out.size() + 2);
  for (uint32_t j = 0; j < out.size(); j++) {
    ebpf_insn x = out[j].x;
    if (out[j].to != To::none) {
      const uint32_t t = out[j].to == To::slow ? slow : pos[out[j].target];
      const int64_t off = static_cast<int64_t>(t) - static_cast<int64_t>(j) - 1;
      if (off > INT16_MAX || off < INT16_MIN) return {};
      x.off = static_cast<int16_t>(off);
    }
    res.push_back(x);
  }
  if (!slow_inside) {  // slow: r0 = kNeedsFullRun (all ones: a cBPF program returns 32 bits)
    res.push_back(insn(EBPF_ALU64 | EBPF_MOV | BPF_K, 0, 0, 0, -1));
    res.push_back(insn(BPF_JMP | EBPF_EXIT, 0, 0, 0, 0));
  }
  return res;
}

// Bug 5: whether the JIT's code can be trusted to end. The code is decoded
// with the instruction forms rte_bpf's x86-64 JIT writes (prefixes 66, F0
// and REX; ALU, mov, test, cmp, xchg with a ModRM; immediates of 8, 16, 32
// or 64 bits; movzx, cmov, bswap; jcc/jmp rel8/rel32; call through a
// register; ret); anything else refuses the code. Sound: every jump goes
// forward and lands on the first byte of an instruction, so every run ends
// (the programs here have no loops: cBPF jumps only forward).
bool jit_is_sound(const uint8_t* code, size_t sz) {
  if (code == nullptr || sz == 0) return false;
  std::vector<uint8_t> start(sz, 0);
  std::vector<std::pair<size_t, size_t>> jumps;  // (instruction, target)
  size_t i = 0;
  while (i < sz) {
    const size_t at = i;
    start[at] = 1;
    bool p66 = false, rex_w = false;
    for (;;) {  // prefixes
      if (i >= sz) return false;
      const uint8_t b = code[i];
      if (b == 0x66) {
        p66 = true;
      } else if (b == 0xf0) {
      } else if ((b & 0xf0) == 0x40) {
        rex_w = (b & 0x08) != 0;
      } else {
        break;
      }
      i++;
    }
    // ModRM with its SIB and displacement; false when past the end.
    auto modrm = [&](uint8_t* reg = nullptr) {
      if (i >= sz) return false;
      const uint8_t m = code[i++];
      const uint8_t mod = m >> 6, rm = m & 7;
      if (reg != nullptr) *reg = (m >> 3) & 7;
      if (mod != 3 && rm == 4) {
        if (i >= sz) return false;
        const uint8_t sib = code[i++];
        if (mod == 0 && (sib & 7) == 5) i += 4;
      }
      if (mod == 1) i += 1;
      if (mod == 2 || (mod == 0 && rm == 5)) i += 4;
      return i <= sz;
    };
    auto rel = [&](size_t n) {  // a jump with an n-byte displacement
      if (i + n > sz) return false;
      int32_t d = 0;
      if (n == 1) {
        d = static_cast<int8_t>(code[i]);
      } else {
        std::memcpy(&d, code + i, 4);
      }
      i += n;
      if (d < 0) return false;  // backward, or onto itself
      jumps.emplace_back(at, i + static_cast<size_t>(d));
      return true;
    };
    const uint8_t op = code[i++];
    bool ok = true;
    switch (op) {
      case 0x01:
      case 0x09:
      case 0x21:
      case 0x29:
      case 0x31:
      case 0x39:
      case 0x85:
      case 0x87:
      case 0x88:
      case 0x89:
      case 0x8b:
      case 0xd3:
        ok = modrm();
        break;
      case 0x81:
        ok = modrm();
        i += 4;
        break;
      case 0x83:
      case 0xc1:
      case 0xc6:
        ok = modrm();
        i += 1;
        break;
      case 0xc7:
        ok = modrm();
        i += p66 ? 2 : 4;
        break;
      case 0xf7: {  // test imm32 (/0), neg, mul, div
        uint8_t reg = 0;
        ok = modrm(&reg);
        if (reg == 0) i += 4;
        break;
      }
      case 0xff: {  // call *%reg (/2) only
        uint8_t reg = 0;
        ok = modrm(&reg) && reg == 2;
        break;
      }
      case 0xc3:
        break;
      case 0xeb:
        ok = rel(1);
        break;
      case 0xe9:
        ok = rel(4);
        break;
      case 0x0f: {
        if (i >= sz) return false;
        const uint8_t op2 = code[i++];
        if (op2 >= 0x80 && op2 <= 0x8f)
          ok = rel(4);
        else if (op2 == 0xb6 || op2 == 0xb7 || (op2 >= 0x40 && op2 <= 0x4f))
          ok = modrm();
        else
          ok = op2 >= 0xc8 && op2 <= 0xcf;  // bswap
        break;
      }
      default:
        if (op >= 0x70 && op <= 0x7f) {
          ok = rel(1);
        } else if (op >= 0xb8 && op <= 0xbf) {
          i += rex_w ? 8 : 4;
        } else {
          return false;
        }
    }
    if (!ok || i > sz) return false;
  }
  for (const auto& [from, to] : jumps)
    if (to >= sz || to <= from || !start[to]) return false;
  return true;
}

// The JIT-compiled function of a loaded program, or nullptr when there is
// none or its code is not sound (bug 5: the program then runs on rte_bpf's
// interpreter, or not at all for the direct one).
uint64_t (*sound_jit(const rte_bpf* b))(void*) {
  rte_bpf_jit jit{};
  if (rte_bpf_get_jit(b, &jit) != 0 || jit.func == nullptr) return nullptr;
  return jit_is_sound(reinterpret_cast<const uint8_t*>(jit.func), jit.sz) ? jit.func : nullptr;
}

rte_bpf* load_jit(const rte_bpf_prm& base, const std::vector<ebpf_insn>& ins,
                  uint64_t (**fn)(void*)) {
  rte_bpf_prm p = base;
  p.ins = ins.data();
  p.nb_ins = static_cast<uint32_t>(ins.size());
  p.prog_arg.buf_size = UINT16_MAX;  // what the verifier lets buf_addr + data_off reach
  rte_bpf* b = rte_bpf_load(&p);     // copies the instructions
  if (b == nullptr) return nullptr;
  *fn = sound_jit(b);
  return b;
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
  if (prog.bf_len > kMaxVerifiedInsns) {  // libpcap's interpreter (filter.hh)
    static_assert(sizeof(bpf_insn) == sizeof(uint64_t));
    f->cbpf_.resize(prog.bf_len);
    std::memcpy(f->cbpf_.data(), prog.bf_insns, prog.bf_len * sizeof(bpf_insn));
    pcap_freecode(&prog);
    return f;
  }
  rte_bpf_prm* prm = rte_bpf_convert(&prog);
  pcap_freecode(&prog);
  if (prm == nullptr)
    return fail(std::string("cannot convert the filter to eBPF: ") + rte_strerror(rte_errno));
  std::vector<ebpf_insn> ins = single_exit(repair(prm->ins, prm->nb_ins));
  rte_bpf_prm fixed = *prm;
  fixed.ins = ins.data();
  fixed.nb_ins = static_cast<uint32_t>(ins.size());
  f->bpf_ = rte_bpf_load(&fixed);  // copies the instructions
  if (f->bpf_ == nullptr) {
    rte_free(prm);
    return fail(std::string("the eBPF verifier refused the filter: ") + rte_strerror(rte_errno));
  }
  f->jit_ = sound_jit(f->bpf_);  // nullptr: rte_bpf's interpreter
  // The direct-load program beside it, only when JIT-compiled too (a
  // program the verifier refuses just leaves the full one alone).
  if (f->jit_ != nullptr) {
    std::vector<ebpf_insn> d = direct_loads(ins);
    if (!d.empty()) d = single_exit(std::move(d));
    if (!d.empty()) {
      f->direct_bpf_ = load_jit(*prm, d, &f->direct_);
      if (f->direct_ == nullptr && f->direct_bpf_ != nullptr) {
        rte_bpf_destroy(f->direct_bpf_);
        f->direct_bpf_ = nullptr;
      }
    }
  }
  rte_free(prm);
  return f;
}

PacketFilter::~PacketFilter() {
  if (bpf_ != nullptr) rte_bpf_destroy(bpf_);
  if (direct_bpf_ != nullptr) rte_bpf_destroy(direct_bpf_);
}

uint64_t PacketFilter::run_full_program(const rte_mbuf* m) const {
  return run(m);
}

uint64_t PacketFilter::run_interpreter(const rte_mbuf* m) const {
  if (bpf_ == nullptr) return run_libpcap(m);
  return rte_bpf_exec(bpf_, const_cast<rte_mbuf*>(m));
}

uint64_t PacketFilter::run(const rte_mbuf* m) const {
  void* ctx = const_cast<rte_mbuf*>(m);
  if (jit_ != nullptr) return jit_(ctx);
  if (bpf_ != nullptr) return rte_bpf_exec(bpf_, ctx);
  return run_libpcap(m);
}

// bpf_filter reads one buffer: the first segment when it is the whole
// frame, else a copy of the frame's first 64 KiB in a per-thread buffer
// (a load beyond what it holds rejects the frame, as past its end).
uint64_t PacketFilter::run_libpcap(const rte_mbuf* m) const {
  const auto* insns = reinterpret_cast<const bpf_insn*>(cbpf_.data());
  if (m->nb_segs == 1 || m->next == nullptr)
    return bpf_filter(insns, rte_pktmbuf_mtod(m, const u_char*), m->pkt_len, m->data_len);
  thread_local std::vector<uint8_t> flat(1u << 16);
  const uint32_t len = std::min<uint32_t>(m->pkt_len, static_cast<uint32_t>(flat.size()));
  const void* p = rte_pktmbuf_read(m, 0, len, flat.data());
  if (p == nullptr) return 0;
  return bpf_filter(insns, static_cast<const u_char*>(p), m->pkt_len, len);
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
  return (direct_ != nullptr ? run_direct(&head) : run(&head)) != 0;
}

}  // namespace sluice
