// fuzz_filter: the pcap-filter path of captures and mirrors
// (src/capture/filter.cc) — an expression through libpcap's compiler,
// rte_bpf_convert, sluice's repair of the converted program, rte_bpf_load
// and the x86-64 JIT, then run on a frame.
//
// Input: EXPR '\0' CTL FRAME
//   EXPR  the expression (at most 512 bytes; the rest of the input is the
//         frame when there is no NUL)
//   CTL   bit 0: two segments, bit 1: the frame carries a metadata VLAN tag
//         (kFlagVlan, TCI from the first two frame bytes), the path of a
//         tag that sluice holds in the metadata (PacketFilter::match_tagged)
// Checks, besides the sanitizers: the JIT and rte_bpf's interpreter agree
// on every frame (the repair of DPDK's converter and JIT is in question),
// and both agree with libpcap's own bpf_filter on the frame's bytes (the
// reference: what tcpdump with the same expression would keep);
// filter_check (libpcap only, what `sluiced --check` says) accepts exactly
// the expressions that compile unless the conversion or the verifier
// refused them.
#include <pcap/pcap.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "capture/filter.hh"
#include "core/meta.hh"
#include "fuzz/fuzz_eal.hh"

using namespace sluice;

namespace {

rte_mempool* g_pool = nullptr;

// Compiled filters by expression (libFuzzer mutates frames far more often
// than it finds a new expression), each with libpcap's program: at most a
// few hundred kept.
struct Compiled {
  std::unique_ptr<PacketFilter> filter;
  bpf_program ref{};
  Compiled() = default;
  Compiled(const Compiled&) = delete;
  Compiled& operator=(const Compiled&) = delete;
  ~Compiled() { pcap_freecode(&ref); }
};
std::map<std::string, std::unique_ptr<Compiled>> g_cache;
pcap_t* g_dead = nullptr;

rte_mbuf* make(const uint8_t* p, size_t len, bool two) {
  len = std::min<size_t>(len, 2 * RTE_MBUF_DEFAULT_DATAROOM);
  rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
  if (m == nullptr) abort();
  size_t first = two ? len / 2 : std::min<size_t>(len, RTE_MBUF_DEFAULT_DATAROOM);
  if (first > RTE_MBUF_DEFAULT_DATAROOM) first = RTE_MBUF_DEFAULT_DATAROOM;
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(first)), p, first);
  if (two || first < len) {
    rte_mbuf* s = rte_pktmbuf_alloc(g_pool);
    if (s == nullptr) abort();
    size_t rest = len - first;
    std::memcpy(rte_pktmbuf_append(s, static_cast<uint16_t>(rest)), p + first, rest);
    if (rte_pktmbuf_chain(m, s) != 0) abort();
  }
  std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  fuzz::init_eal((*argv)[0], "0", 128);
  g_pool = rte_pktmbuf_pool_create("fuzz_filter", 255, 0, kMbufPrivSize, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   SOCKET_ID_ANY);
  if (g_pool == nullptr) abort();
  g_dead = pcap_open_dead(DLT_EN10MB, 262144);  // filter.cc's snap length
  if (g_dead == nullptr) abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* nul =
      static_cast<const uint8_t*>(std::memchr(data, 0, std::min<size_t>(size, 513)));
  if (nul == nullptr && size > 512) return 0;
  size_t elen = nul ? static_cast<size_t>(nul - data) : size;
  std::string expr(reinterpret_cast<const char*>(data), elen);
  const uint8_t* rest = nul ? nul + 1 : data + size;
  size_t rlen = static_cast<size_t>(data + size - rest);
  uint8_t ctl = 0;
  if (rlen > 0) {
    ctl = rest[0];
    rest++;
    rlen--;
  }

  Compiled* c = nullptr;
  if (auto it = g_cache.find(expr); it != g_cache.end()) {
    c = it->second.get();
  } else {
    std::string err;
    auto pf = PacketFilter::compile(expr, &err);
    const bool libpcap_ok = filter_check(expr).empty();
    if (pf != nullptr && !libpcap_ok) {
      fprintf(stderr, "fuzz_filter: '%s' compiles but filter_check refuses it\n", expr.c_str());
      abort();
    }
    if (pf == nullptr && libpcap_ok && err.rfind("cannot convert", 0) != 0 &&
        err.rfind("the eBPF verifier", 0) != 0) {
      fprintf(stderr, "fuzz_filter: '%s': filter_check accepts, compile says %s\n", expr.c_str(),
              err.c_str());
      abort();
    }
    if (pf == nullptr) return 0;
    auto nc = std::make_unique<Compiled>();
    if (pcap_compile(g_dead, &nc->ref, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) abort();
    nc->filter = std::move(pf);
    if (g_cache.size() >= 256) g_cache.clear();
    c = nc.get();
    g_cache.emplace(expr, std::move(nc));
  }
  PacketFilter* f = c->filter.get();

  rte_mbuf* m = make(rest, rlen, ctl & 1);
  if ((ctl & 2) && rlen >= 2) {
    PktMeta& md = meta(m);
    md.flags |= kFlagVlan;
    md.vlan_proto = 0x8100;
    md.vlan_tci = static_cast<uint16_t>(rest[0] << 8 | rest[1]);
  }
  const bool jit = f->match(m);
  if (!(ctl & 2) && f->jitted()) {
    const bool interp = f->run_interpreter(m) != 0;
    if (jit != interp) {
      fprintf(stderr,
              "fuzz_filter: '%s': the JIT says %d, the interpreter %d (%u bytes, %u segs)\n",
              expr.c_str(), jit, interp, m->pkt_len, m->nb_segs);
      abort();
    }
  }
  if (!(ctl & 2)) {
    const u_int len = m->pkt_len;  // the bytes make() put in the mbuf
    const bool ref = bpf_filter(c->ref.bf_insns, rest, len, len) != 0;
    if (jit != ref) {
      fprintf(stderr, "fuzz_filter: '%s': sluice says %d, libpcap %d (%u bytes, %u segs)\n",
              expr.c_str(), jit, ref, m->pkt_len, m->nb_segs);
      abort();
    }
  }
  rte_pktmbuf_free(m);
  return 0;
}
