// Kernel peers: checksum completion, TCP segmentation and the truncation
// check of frames a Linux peer left unfinished (see rx_csum.hh).
#include "core/rx_csum.hh"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <vector>

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_mempool.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/netif.hh"

namespace sluice::rx_csum {
namespace {

constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86dd;

inline uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
inline void put_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
// 16-bit words as they lie in memory (the ones' complement sum does not care
// about byte order as long as every term is read the same way).
inline uint16_t raw16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void put_raw16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}
inline uint16_t fold(uint32_t s) {
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// The pseudo-header sum of RFC 793/768 (IPv4) or RFC 8200 §8.1 (IPv6),
// folded, not complemented: what Linux leaves in the checksum field of a
// CHECKSUM_PARTIAL packet (~csum_tcpudp_magic / ~csum_ipv6_magic of 0).
uint16_t pseudo_sum(const uint8_t* p, const Hdrs& h, uint32_t l4_len) {
  const uint8_t* ip = p + h.l3_off;
  uint32_t s = rte_cpu_to_be_16(static_cast<uint16_t>(l4_len)) + rte_cpu_to_be_16(h.proto);
  const uint8_t* a = h.ip == 4 ? ip + 12 : ip + 8;
  unsigned words = h.ip == 4 ? 4 : 16;  // source and destination
  for (unsigned i = 0; i < words; i++) s += raw16(a + 2 * i);
  return fold(s);
}

inline unsigned csum_field(const Hdrs& h) {
  return h.l4_off + (h.proto == kTcp ? 16 : 6);
}

inline uint16_t tcp_hdr_len(const uint8_t* p, const Hdrs& h) {
  return static_cast<uint16_t>((p[h.l4_off + 12] >> 4) * 4);
}

// Writes the full checksum of the L4 segment at p + h.l4_off, l4_len bytes.
void write_full_csum(uint8_t* p, const Hdrs& h, uint32_t l4_len) {
  uint8_t* field = p + csum_field(h);
  put_raw16(field, 0);
  uint32_t s = uint32_t(pseudo_sum(p, h, l4_len)) + rte_raw_cksum(p + h.l4_off, l4_len);
  uint16_t c = static_cast<uint16_t>(~fold(s));
  put_raw16(field, c == 0 ? 0xffff : c);  // CSUM_MANGLED_0
}

// ---- per-Dataplane state: the fixups of every port, landing pools, log --------

struct State {
  explicit State(Dataplane&) {}
  ~State() {
    for (auto& [sock, mp] : landing)
      if (rte_mempool_avail_count(mp) == mp->size) rte_mempool_free(mp);
  }
  std::vector<std::unique_ptr<RxFixup>> fixups;
  std::vector<Device*> devs;                 // devs[i] has fixups[i]
  std::map<unsigned, rte_mempool*> landing;  // socket → pool of big RX buffers
  bool registered = false;
};

std::string devarg(const std::string& devargs, const std::string& key) {
  size_t pos = devargs.find(',');
  while (pos != std::string::npos) {
    size_t next = devargs.find(',', pos + 1);
    std::string kv = devargs.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    pos = next;
    size_t eq = kv.find('=');
    if (eq != std::string::npos && kv.substr(0, eq) == key) return kv.substr(eq + 1);
  }
  return "";
}

// The ring frame size the PMD will use for these (already completed) devargs.
unsigned ring_frame_of(const std::string& devargs) {
  std::string v = devarg(devargs, "framesz");
  unsigned f = v.empty() ? 2048 : static_cast<unsigned>(std::strtoul(v.c_str(), nullptr, 10));
  return f == 0 ? 2048 : f;
}

// An mbuf data room that holds a ring frame's data (framesz - 32: what the
// PMD checks at queue setup), within the uint16_t limit.
unsigned data_room_for(unsigned ring_frame) {
  uint64_t need = uint64_t(ring_frame) - 32 + RTE_PKTMBUF_HEADROOM;
  return static_cast<unsigned>(std::min<uint64_t>(need, 65535));
}

unsigned pow2_minus1_at_least(uint64_t n) {
  uint64_t v = 1;
  while (v - 1 < n) v <<= 1;
  return static_cast<unsigned>(v - 1);
}

void log_seen(Dataplane& dp) {
  auto& st = dp.feature<State>();
  for (size_t i = 0; i < st.fixups.size(); i++) {
    RxFixup& f = *st.fixups[i];
    uint8_t fresh = f.seen.load(std::memory_order_acquire) & ~f.logged;
    if (fresh == 0) continue;
    f.logged |= fresh;
    const Device& d = *st.devs[i];
    if (fresh & RxFixup::kTruncated)
      spdlog::warn("{}", truncated_message(d, f, f.trunc_len.load(), f.trunc_claimed.load()));
    if (fresh & RxFixup::kOversize)
      spdlog::warn(
          "port {}: dropped a {}-byte frame bigger than its MTU {} that is not TCP (IP protocol "
          "{}): a UDP or other GSO frame from the kernel peer of {}, which sluice cannot cut "
          "without its gso_size. Fix: ethtool -K PEER gso off tx-udp-segmentation off, on that "
          "peer (the other end of {}). Drop reason rx_oversize; logged once per port",
          d.name, f.over_len.load(), d.mtu, f.over_proto.load(), f.iface, f.iface);
  }
}

// ---- show port rx-fixup [DEV|all] -----------------------------------------------

CmdResult show_rx_fixup(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.size() > 1) return CmdResult::error("usage: show port rx-fixup [DEV|all]");
  auto* st = dp.find_feature<State>();
  CmdResult r;
  r.json = nlohmann::json::object();
  TextTable t({{"DEVICE"},
               {"IFACE"},
               {"RING-FRAME", TextTable::right},
               {"COMPLETED", TextTable::right},
               {"GSO-FRAMES", TextTable::right},
               {"GSO-SEGMENTS", TextTable::right},
               {"COPIED", TextTable::right}});
  bool found = args.empty() || args[0] == "all";
  for (size_t i = 0; st != nullptr && i < st->fixups.size(); i++) {
    const Device& d = *st->devs[i];
    if (!args.empty() && args[0] != "all" && args[0] != d.name) continue;
    found = true;
    const RxFixup& f = *st->fixups[i];
    FixCounters c = f.sum();
    r.json[d.name] = {{"iface", f.iface},           {"ring_frame", f.ring_frame},
                      {"max_frame", f.snap_max},    {"completed", c.completed},
                      {"gso_frames", c.gso_frames}, {"gso_segments", c.gso_segments},
                      {"copied", c.copied}};
    t.add({d.name, f.iface, std::to_string(f.ring_frame), std::to_string(c.completed),
           std::to_string(c.gso_frames), std::to_string(c.gso_segments), std::to_string(c.copied)});
  }
  if (!found) {
    if (dp.net.find(args[0]) == nullptr)
      return CmdResult::error("no such device '" + args[0] + "'");
    return CmdResult::error("'" + args[0] + "' has no kernel-peer receive fix-ups");
  }
  r.text = t.str();
  return r;
}

const CommandRegistrar kShowRxFixup({
    .words = {"show", "port", "rx-fixup"},
    .usage = "show port rx-fixup [DEV|all]",
    .help = "kernel-peer ports (net_af_packet): checksums completed, GSO frames segmented",
    .fn = show_rx_fixup,
});

}  // namespace

const char* csum_name(Csum c) {
  static const char* const names[] = {"not_l4", "none", "kept", "good", "completed"};
  return enum_name(c, names);
}

Hdrs parse(const uint8_t* p, uint32_t len) {
  Hdrs h;
  if (len < 14) return h;
  uint32_t o = 12;
  uint16_t et = be16(p + o);
  for (int tags = 0; (et == 0x8100 || et == 0x88a8) && tags < 2; tags++) {
    o += 4;
    if (o + 2 > len) return h;
    et = be16(p + o);
  }
  o += 2;
  h.l2_len = static_cast<uint16_t>(o);
  h.l3_off = h.l2_len;
  const uint8_t* ip = p + o;
  if (et == kEthIpv4) {
    if (len < o + 20 || (ip[0] >> 4) != 4) return h;
    unsigned ihl = (ip[0] & 15) * 4u;
    uint16_t tot = be16(ip + 2);
    if (ihl < 20 || len < o + ihl || tot < ihl) return h;
    h.ip = 4;
    h.proto = ip[9];
    h.ip_end = o + tot;
    h.fragment = (be16(ip + 6) & 0x3fff) != 0;  // MF or an offset
    h.l4_off = static_cast<uint16_t>(o + ihl);
  } else if (et == kEthIpv6) {
    if (len < o + 40 || (ip[0] >> 4) != 6) return h;
    uint16_t plen = be16(ip + 4);
    if (plen == 0) return h;  // a jumbogram: not ours to touch
    h.ip = 6;
    h.ip_end = o + 40 + plen;
    uint8_t nh = ip[6];
    uint32_t l4 = o + 40;
    // Hop-by-hop and destination options do not change the pseudo-header;
    // a routing header does (its final destination): left alone.
    while (nh == 0 || nh == 60) {
      if (l4 + 8 > len || l4 + 8 > h.ip_end) break;
      uint8_t next = p[l4];
      l4 += (p[l4 + 1] + 1u) * 8;
      nh = next;
    }
    h.fragment = nh == 44;
    h.proto = nh;
    h.l4_off = static_cast<uint16_t>(std::min<uint32_t>(l4, 0xffff));
    if (l4 > h.ip_end) return h;
  } else {
    return h;
  }
  if (h.fragment || (h.proto != kTcp && h.proto != kUdp)) return h;
  uint32_t min_hdr = h.proto == kTcp ? 20 : 8;
  if (h.l4_off + min_hdr > len || h.l4_off + min_hdr > h.ip_end) return h;
  if (h.proto == kTcp) {
    uint32_t doff = tcp_hdr_len(p, h);
    if (doff < 20 || h.l4_off + doff > len || h.l4_off + doff > h.ip_end) return h;
  }
  h.l4_ok = true;
  return h;
}

Csum complete(uint8_t* p, uint32_t len, const Hdrs& h) {
  if (!h.l4_ok || h.ip_end > len) return Csum::not_l4;
  uint32_t l4_len = h.ip_end - h.l4_off;
  uint8_t* field = p + csum_field(h);
  uint16_t v = raw16(field);
  if (h.proto == kUdp && h.ip == 4 && v == 0) return Csum::none;  // RFC 768: no checksum
  uint16_t ph = pseudo_sum(p, h, l4_len);
  // Not the signature of a partial checksum: good or bad, it goes on as it
  // is (a router does not look; the receiver decides).
  if (v != ph) return Csum::kept;
  // The signature. It could still be a valid checksum whose value happens to
  // be the pseudo-header sum: then it stays.
  uint16_t s = rte_raw_cksum(p + h.l4_off, l4_len);  // includes the field (= ph)
  if (fold(uint32_t(s) + ph) == 0xffff) return Csum::good;
  uint16_t c = static_cast<uint16_t>(~s);  // skb_checksum_help: fold(sum from csum_start), ~
  put_raw16(field, c == 0 ? 0xffff : c);
  return Csum::completed;
}

Csum complete(rte_mbuf* m) {
  uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
  return complete(p, m->data_len, parse(p, m->data_len));
}

unsigned segment(const rte_mbuf* m, const Hdrs& h, uint16_t mtu, rte_mempool* pool, uint32_t* off,
                 rte_mbuf** out, unsigned max_out, bool* nomem) {
  const uint8_t* src = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t thl = tcp_hdr_len(src, h);
  const uint32_t hdr = h.l4_off + thl;  // every header, Ethernet to TCP options
  const uint32_t l3_hdr = h.l4_off - h.l3_off;
  const uint32_t payload = h.ip_end - hdr;
  int64_t mss = int64_t(mtu) - l3_hdr - thl;
  int64_t room = int64_t(rte_pktmbuf_data_room_size(pool)) - RTE_PKTMBUF_HEADROOM - hdr;
  mss = std::min(mss, room);
  if (mss <= 0 || hdr > h.ip_end) return 0;
  rte_be32_t seq_be;  // at any alignment: memcpy, not a uint32_t load
  std::memcpy(&seq_be, src + h.l4_off + 4, 4);
  const uint32_t seq0 = rte_be_to_cpu_32(seq_be);
  const uint8_t flags = src[h.l4_off + 13];
  const uint16_t id0 = h.ip == 4 ? be16(src + h.l3_off + 4) : 0;
  unsigned made = 0;
  while (made < max_out && *off < payload) {
    uint32_t chunk = static_cast<uint32_t>(std::min<int64_t>(mss, payload - *off));
    rte_mbuf* s = rte_pktmbuf_alloc(pool);
    if (s == nullptr) {
      *nomem = true;
      break;
    }
    uint8_t* d =
        reinterpret_cast<uint8_t*>(rte_pktmbuf_append(s, static_cast<uint16_t>(hdr + chunk)));
    std::memcpy(d, src, hdr);
    std::memcpy(d + hdr, src + hdr + *off, chunk);
    uint8_t* ip = d + h.l3_off;
    uint8_t* th = d + h.l4_off;
    bool last = *off + chunk == payload;
    if (h.ip == 4) {
      put_be16(ip + 2, static_cast<uint16_t>(l3_hdr + thl + chunk));
      put_be16(ip + 4, static_cast<uint16_t>(id0 + *off / mss));  // one IP ID per segment
      put_raw16(ip + 10, 0);
      put_raw16(ip + 10, static_cast<uint16_t>(~rte_raw_cksum(ip, l3_hdr)));
    } else {
      put_be16(ip + 4, static_cast<uint16_t>(l3_hdr - 40 + thl + chunk));
    }
    const rte_be32_t seq = rte_cpu_to_be_32(seq0 + *off);
    std::memcpy(th + 4, &seq, 4);
    uint8_t f = flags;
    if (!last) f &= static_cast<uint8_t>(~(0x01 | 0x08));  // FIN, PSH: the last segment's
    if (*off != 0) f &= static_cast<uint8_t>(~0x80);       // CWR: the first segment's
    th[13] = f;
    Hdrs sh = h;
    sh.ip_end = hdr + chunk;
    write_full_csum(d, sh, thl + chunk);
    s->port = m->port;
    s->ol_flags = m->ol_flags & (RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED);
    s->vlan_tci = m->vlan_tci;
    out[made++] = s;
    *off += chunk;
  }
  return made;
}

RxFixup::RxFixup(rte_mempool* normal_pool, rte_mempool* landing_pool, unsigned rf, unsigned workers,
                 std::string ifc)
    : pool(normal_pool),
      landing(landing_pool),
      snap_max(rf > kRingMacOffset ? rf - kRingMacOffset : 0),
      ring_frame(rf),
      iface(std::move(ifc)),
      ctr(new FixCounters[std::max(workers, 1u)]()),
      nworkers(std::max(workers, 1u)) {}

FixCounters RxFixup::sum() const {
  FixCounters s{};
  for (unsigned i = 0; i < nworkers; i++) {
    s.completed += ctr[i].completed;
    s.gso_frames += ctr[i].gso_frames;
    s.gso_segments += ctr[i].gso_segments;
    s.copied += ctr[i].copied;
  }
  s.completed -= base.completed;
  s.gso_frames -= base.gso_frames;
  s.gso_segments -= base.gso_segments;
  s.copied -= base.copied;
  return s;
}

void receive(Worker& w, Device& port, rte_mbuf** pkts, uint16_t n) {
  RxFixup& f = *port.rx_fixup;
  FixCounters& c = f.ctr[w.id < f.nworkers ? w.id : 0];
  rte_mbuf* out[kBurst];
  uint16_t k = 0;
  auto flush = [&] {
    if (k != 0) port_receive(w, port, out, k);
    k = 0;
  };
  // A frame as long as a ring frame was cut, whatever it carries — unless a
  // frame that long fits the port's MTU anyway.
  const uint32_t snap_max = f.snap_max > uint32_t(port.mtu) + 22 ? f.snap_max : 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    if (m->nb_segs != 1) {  // net_af_packet makes none; pass such a frame on as it is
      if (k == kBurst) flush();
      out[k++] = m;
      continue;
    }
    uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
    uint32_t len = m->data_len;
    Hdrs h = parse(p, len);
    if ((h.ip != 0 && h.ip_end > len) || (snap_max != 0 && len >= snap_max)) {
      if (!(f.seen.load(std::memory_order_relaxed) & RxFixup::kTruncated)) {
        f.trunc_len.store(len, std::memory_order_relaxed);
        f.trunc_claimed.store(h.ip != 0 ? h.ip_end : 0, std::memory_order_relaxed);
        f.seen.fetch_or(RxFixup::kTruncated, std::memory_order_release);
      }
      w.drop(m, port.index, DropReason::rx_truncated);
      continue;
    }
    if (h.ip != 0 && h.ip_end - h.l3_off > port.mtu) {  // a GSO frame, or a bigger peer MTU
      if (h.l4_ok && h.proto == kTcp) {
        const uint32_t payload = h.ip_end - h.l4_off - tcp_hdr_len(p, h);
        uint32_t off = 0;
        bool nomem = false;
        uint64_t segs = 0;
        while (off < payload && !nomem) {
          if (k == kBurst) flush();
          unsigned made = segment(m, h, port.mtu, f.pool, &off, out + k, kBurst - k, &nomem);
          if (made == 0) break;
          k = static_cast<uint16_t>(k + made);
          segs += made;
        }
        if (segs == 0) {
          w.drop(m, port.index, nomem ? DropReason::nomem : DropReason::rx_oversize);
          continue;
        }
        c.gso_frames++;
        c.gso_segments += segs;
        if (off < payload)
          w.drop(m, port.index, DropReason::nomem);  // the rest of it had no mbufs
        else
          w.free_later(m);
        continue;
      }
      if (!(f.seen.load(std::memory_order_relaxed) & RxFixup::kOversize)) {
        f.over_len.store(len, std::memory_order_relaxed);
        f.over_proto.store(h.proto, std::memory_order_relaxed);
        f.seen.fetch_or(RxFixup::kOversize, std::memory_order_release);
      }
      w.drop(m, port.index, DropReason::rx_oversize);
      continue;
    }
    if (complete(p, len, h) == Csum::completed) c.completed++;
    if (m->pool == f.landing) {  // out of the 64 KB buffers, so that they stay few
      rte_mbuf* copy = rte_pktmbuf_copy(m, f.pool, 0, UINT32_MAX);
      if (copy == nullptr) {
        w.drop(m, port.index, DropReason::nomem);
        continue;
      }
      w.free_later(m);
      c.copied++;
      m = copy;
    }
    if (k == kBurst) flush();
    out[k++] = m;
  }
  flush();
  w.flush_free();
}

// ---- port setup --------------------------------------------------------------

bool is_af_packet(const std::string& devargs) {
  std::string name = devargs.substr(0, devargs.find(','));
  return name.rfind("net_af_packet", 0) == 0 || name.rfind("eth_af_packet", 0) == 0;
}

std::string port_devargs(const std::string& devargs) {
  if (!is_af_packet(devargs)) return devargs;
  if (!devarg(devargs, "framesz").empty() || !devarg(devargs, "blocksz").empty() ||
      !devarg(devargs, "framecnt").empty())
    return devargs;  // the operator's geometry, as given
  return devargs + ",blocksz=" + std::to_string(kBlockSize) +
         ",framesz=" + std::to_string(kFrameSize) + ",framecnt=" + std::to_string(kFrameCount);
}

rte_mempool* rx_pool(Dataplane& dp, const std::string& devargs, unsigned socket,
                     rte_mempool* normal) {
  if (!is_af_packet(devargs)) return normal;
  unsigned room = data_room_for(ring_frame_of(port_devargs(devargs)));
  if (normal != nullptr && room <= rte_pktmbuf_data_room_size(normal)) return normal;
  auto& st = dp.feature<State>();
  auto it = st.landing.find(socket);
  if (it != st.landing.end()) return it->second;
  // One pool per socket for every net_af_packet port on it, with the data
  // room the biggest ring frame needs. Frames leave it at once (copied into
  // the normal pool by receive(), which frees the batch before it returns),
  // so a worker holds at most one burst of them besides its lcore cache.
  unsigned room_max = room;
  for (auto& p : dp.topo.ports)
    if (is_af_packet(p.device))
      room_max = std::max(room_max, data_room_for(ring_frame_of(port_devargs(p.device))));
  constexpr unsigned kCache = 16;
  uint64_t need = kBurst + dp.workers.size() * (kBurst + kCache * 2);
  std::string name = "sluice_rx64k_s" + std::to_string(socket);
  rte_mempool* mp =
      rte_pktmbuf_pool_create(name.c_str(), pow2_minus1_at_least(need), kCache, kMbufPrivSize,
                              static_cast<uint16_t>(room_max), static_cast<int>(socket));
  if (mp == nullptr)
    throw std::runtime_error("cannot create the net_af_packet RX pool on socket " +
                             std::to_string(socket) + ": " + rte_strerror(rte_errno) +
                             " (raise eal.memory_mb)");
  spdlog::info(
      "mbuf pool {}: {} mbufs of {} bytes on socket {} (net_af_packet RX: frames up to {} bytes "
      "arrive whole)",
      name, mp->size, room_max, socket, room_max - RTE_PKTMBUF_HEADROOM + 32 - kRingMacOffset);
  st.landing[socket] = mp;
  return mp;
}

void attach(Dataplane& dp, Device& dev, const std::string& driver, const std::string& devargs,
            rte_mempool* normal, rte_mempool* rx) {
  if (driver != "net_af_packet") return;
  auto& st = dp.feature<State>();
  std::string dv = port_devargs(devargs);
  auto f = std::make_unique<RxFixup>(normal, rx != normal ? rx : nullptr, ring_frame_of(dv),
                                     static_cast<unsigned>(dp.workers.size()), devarg(dv, "iface"));
  dev.rx_fixup = f.get();
  spdlog::info(
      "port {}: kernel peer on {}: partial TCP/UDP checksums completed, TCP GSO frames up to {} "
      "bytes cut to MTU {} (ring frames of {} bytes)",
      dev.name, f->iface, f->snap_max, dev.mtu, f->ring_frame);
  st.fixups.push_back(std::move(f));
  st.devs.push_back(&dev);
  if (st.registered) return;
  st.registered = true;
  dp.add_timer(200, [&dp](uint64_t) { log_seen(dp); });
  dp.add_clear_stats([&dp] {
    auto& s = dp.feature<State>();
    for (auto& fx : s.fixups) {
      FixCounters now = fx->sum();
      fx->base.completed += now.completed;
      fx->base.gso_frames += now.gso_frames;
      fx->base.gso_segments += now.gso_segments;
      fx->base.copied += now.copied;
    }
  });
  dp.add_shutdown([&dp] {
    log_seen(dp);
    for (auto& [sock, mp] : dp.feature<State>().landing) {
      unsigned avail = rte_mempool_avail_count(mp);
      if (avail != mp->size)
        spdlog::warn("mbuf pool {}: {} of {} mbufs back ({} missing)", mp->name, avail, mp->size,
                     mp->size - avail);
    }
  });
}

std::string truncated_message(const Device& dev, const RxFixup& f, uint32_t len, uint32_t claimed) {
  std::string what = claimed != 0 ? std::to_string(len) + " of the " + std::to_string(claimed) +
                                        " bytes its IP header claims"
                                  : std::to_string(len) + " bytes, as long as a ring frame holds";
  std::string also =
      f.ring_frame < kFrameSize
          ? ", or leave framesz/blocksz/framecnt out of the port's device so that sluice's "
            "ring frames (framesz=" +
                std::to_string(kFrameSize) + ") take 64 KB GSO frames whole"
          : "";
  return "port " + dev.name + ": dropped a frame that arrived truncated (" + what +
         "; net_af_packet framesz=" + std::to_string(f.ring_frame) + " holds " +
         std::to_string(f.snap_max) + "): a TSO/GSO frame from the kernel peer of " + f.iface +
         ". Fix: ethtool -K PEER tso off gso off, on that peer (the other end of " + f.iface + ")" +
         also + ". Drop reason rx_truncated; logged once per port";
}

}  // namespace sluice::rx_csum
