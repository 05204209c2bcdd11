#include "capture/capture.hh"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <system_error>
#include <thread>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>

#include "capture/pcapng.hh"
#include "core/dataplane.hh"
#include "core/meta.hh"
#include "core/worker.hh"

namespace sluice {
namespace {

constexpr uint64_t kNsPerSec = 1000000000ull;
constexpr uint64_t kTimerMs = 50;
// Idle writer: short naps right after traffic (a 4096-entry ring fills in
// well under a millisecond at line rate), longer ones when the link is quiet.
constexpr auto kWriterNap = std::chrono::microseconds(50);
constexpr auto kWriterIdle = std::chrono::milliseconds(1);
constexpr unsigned kWriterNaps = 200;  // short naps before the long ones (~10 ms)
constexpr auto kFlushEvery = std::chrono::milliseconds(200);

// Copy metadata: the copy's PktMeta keeps the packet's (VLAN tag, flags,
// pkt_type) with dev = the tapped device; user[] carries the rest.
constexpr unsigned kUserTsc = 0;      // rte_rdtsc() at the tap
constexpr unsigned kUserOrigLen = 1;  // length on the wire, tag included
constexpr unsigned kUserDir = 2;      // Direction

// Per-worker counters: only worker `id` writes its slot (plain load + store,
// no locked instruction); readers sum the slots.
struct alignas(RTE_CACHE_LINE_SIZE) Slot {
  std::atomic<uint64_t> accepted{0}, filtered{0}, nombuf{0}, ringfull{0};
};

struct Totals {
  uint64_t accepted = 0, filtered = 0, nombuf = 0, ringfull = 0;
};

inline void bump(std::atomic<uint64_t>& c, uint64_t n) {
  if (n != 0) c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

std::atomic<unsigned> g_name_seq{0};  // unique ring / pool names in the process

}  // namespace

const char* direction_name(Direction d) {
  switch (d) {
    case Direction::ingress:
      return "ingress";
    case Direction::egress:
      return "egress";
    default:
      return "both";
  }
}

struct CaptureManager::Capture {
  Capture(Dataplane& d, uint32_t i, const CaptureOptions& o) : dp(d), id(i), opt(o) {}

  Dataplane& dp;
  const uint32_t id;
  const CaptureOptions opt;
  uint32_t snaplen = 0;   // effective
  uint16_t dev = kNoDev;  // kNoDev: "any"
  uint32_t tap_id = 0;
  rte_mempool* pool = nullptr;
  rte_ring* ring = nullptr;

  // Datapath side.
  std::array<Slot, kCaptureMaxWorkers> slots;
  std::atomic<bool> accepting{true};
  std::unique_ptr<PacketFilter> filter;  // nullptr: every packet

  // Writer side.
  std::thread writer;
  PcapngWriter file;
  std::atomic<bool> stop_req{false};  // set after the tap is gone: drain and exit
  std::atomic<bool> done{false};      // count reached or write error: the timer finishes it
  std::atomic<uint64_t> written{0};
  std::vector<int32_t> ifid = std::vector<int32_t>(kMaxDevices, -1);  // device → interface id
  std::vector<uint64_t> if_written;                                   // per interface id
  std::string error;  // written by the writer, read after join
  uint64_t base_tsc = 0, base_ns = 0, hz = 1;
  uint64_t start_ns = 0;

  // Control side.
  bool running = false;
  std::chrono::steady_clock::time_point started;

  uint64_t tsc_to_ns(uint64_t tsc) const {
    auto span = [this](uint64_t d) { return d / hz * kNsPerSec + d % hz * kNsPerSec / hz; };
    return tsc >= base_tsc ? base_ns + span(tsc - base_tsc) : base_ns - span(base_tsc - tsc);
  }

  Totals totals() const {
    Totals t;
    for (const Slot& s : slots) {
      t.accepted += s.accepted.load(std::memory_order_relaxed);
      t.filtered += s.filtered.load(std::memory_order_relaxed);
      t.nombuf += s.nombuf.load(std::memory_order_relaxed);
      t.ringfull += s.ringfull.load(std::memory_order_relaxed);
    }
    return t;
  }

  void add_interface(uint16_t d) {
    PcapngInterface itf;
    itf.snaplen = snaplen;
    if (const Device* dv = dp.net.dev(d)) {
      itf.name = dv->name;
      itf.description = dev_kind_name(dv->kind);
      itf.mac = dv->mac;
    } else {
      itf.name = "dev" + std::to_string(d);
    }
    ifid[d] = static_cast<int32_t>(file.add_interface(itf));
    if_written.push_back(0);
  }

  // Writes one copy (or discards it once the capture is done).
  void write(const rte_mbuf* m) {
    if (done.load(std::memory_order_relaxed)) return;
    const PktMeta& md = meta(m);
    if (md.dev >= kMaxDevices) return;
    if (ifid[md.dev] < 0) add_interface(md.dev);
    uint32_t i = static_cast<uint32_t>(ifid[md.dev]);
    if (opt.max_bytes != 0) {
      // EPB: 32 bytes of block and options around the padded data.
      uint64_t need = 32 + ((std::min<uint64_t>(m->pkt_len + 4, snaplen) + 3) & ~uint64_t(3));
      if (file.bytes() + need > opt.max_bytes) {
        accepting.store(false, std::memory_order_relaxed);
        file.flush();
        done.store(true, std::memory_order_release);
        return;
      }
    }
    file.write_mbuf(i, tsc_to_ns(md.user[kUserTsc]), m, static_cast<Direction>(md.user[kUserDir]),
                    static_cast<uint32_t>(md.user[kUserOrigLen]));
    if (file.failed()) {  // disk full, I/O error: stop here, the timer finishes the capture
      error = "write to " + opt.path + " failed: " + file.error();
      accepting.store(false, std::memory_order_relaxed);
      done.store(true, std::memory_order_release);
      return;
    }
    if_written[i]++;
    uint64_t n = written.load(std::memory_order_relaxed) + 1;
    written.store(n, std::memory_order_relaxed);
    if (opt.count != 0 && n >= opt.count) {
      accepting.store(false, std::memory_order_relaxed);
      file.flush();
      done.store(true, std::memory_order_release);
    }
  }

  void writer_main() {
    rte_mbuf* burst[kBurst];
    bool dirty = false;
    unsigned naps = kWriterNaps;
    auto last_flush = std::chrono::steady_clock::now();
    for (;;) {
      unsigned n =
          rte_ring_sc_dequeue_burst(ring, reinterpret_cast<void**>(burst), kBurst, nullptr);
      if (n == 0) {
        // stop_req is set after the tap is gone, so once it is seen an empty
        // ring stays empty.
        if (stop_req.load(std::memory_order_acquire) && rte_ring_empty(ring)) break;
        if (dirty) {  // idle: make what we have readable (tcpdump -U)
          file.flush();
          dirty = false;
          last_flush = std::chrono::steady_clock::now();
        }
        if (naps < kWriterNaps) {
          naps++;
          std::this_thread::sleep_for(kWriterNap);
        } else {
          std::this_thread::sleep_for(kWriterIdle);
        }
        continue;
      }
      naps = 0;
      for (unsigned i = 0; i < n; i++) write(burst[i]);
      rte_pktmbuf_free_bulk(burst, n);
      dirty = true;
      if (std::chrono::steady_clock::now() - last_flush > kFlushEvery) {
        file.flush();
        dirty = false;
        last_flush = std::chrono::steady_clock::now();
      }
    }
    // ISBs: the tap is gone, the counters are final.
    Totals t = totals();
    uint64_t end = realtime_ns();
    for (uint32_t i = 0; i < file.interface_count(); i++) {
      PcapngStats s;
      s.start_ns = start_ns;
      s.end_ns = end;
      s.usrdeliv = if_written[i];
      if (i == 0) {
        s.ifrecv = t.accepted + t.filtered + t.nombuf;
        s.ifdrop = t.nombuf + t.ringfull;
        if (file.interface_count() > 1) s.comment = "ifrecv/ifdrop: totals of the capture";
      }
      file.write_stats(i, end, s);
    }
    if (!file.close() && error.empty()) error = "write to " + opt.path + " failed: " + file.error();
  }

  void free_resources() {
    if (ring != nullptr) {
      rte_mbuf* m;
      while (rte_ring_sc_dequeue(ring, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
      rte_ring_free(ring);
      ring = nullptr;
    }
    if (pool != nullptr) {
      rte_mempool_free(pool);
      pool = nullptr;
    }
  }
};

CaptureManager::CaptureManager(Dataplane& dp) : dp_(dp) {
  dp_.add_timer(kTimerMs, [this](uint64_t) { poll(); });
  dp_.add_shutdown([this] { stop_all(true); });  // the workers have stopped
  // A device a reload removes takes its captures with it (their files are
  // closed with what they hold), as Linux ends a tcpdump whose interface goes.
  dp_.add_unregister([this](Device& d) {
    for (const CaptureInfo& c : list())
      if (c.running && c.dev == d.name) {
        spdlog::info("capture {}: device {} removed: capture stopped", c.id, d.name);
        stop(c.id);
      }
  });
}

CaptureManager::~CaptureManager() {
  stop_all(true);
}

uint32_t CaptureManager::start(const CaptureOptions& opt, std::string* error) {
  auto fail = [error](std::string msg) {
    if (error) *error = std::move(msg);
    return 0u;
  };
  if (opt.path.empty()) return fail("capture needs a file");
  if (opt.dir != Direction::ingress && opt.dir != Direction::egress && opt.dir != Direction::both)
    return fail("bad direction");
  uint16_t dev = kNoDev;
  Device* dptr = nullptr;
  if (opt.dev != "any") {
    dptr = dp_.net.find(opt.dev);
    if (dptr == nullptr) return fail("no device '" + opt.dev + "'");
    dev = dptr->index;
  }
  if (opt.snaplen < kCaptureSnaplenMin)
    return fail("snaplen must be at least " + std::to_string(kCaptureSnaplenMin));
  if (opt.ring_size < 1 || opt.ring_size > (1u << 20)) return fail("ring size must be 1..1048576");

  // Finished captures are forgotten at the next start.
  caps_.erase(std::remove_if(caps_.begin(), caps_.end(), [](auto& c) { return !c->running; }),
              caps_.end());

  auto c = std::make_unique<Capture>(dp_, next_id_, opt);
  c->dev = dev;
  c->snaplen = std::min(opt.snaplen, kCaptureSnaplenMax);
  if (!opt.filter.empty()) {
    std::string ferr;
    c->filter = PacketFilter::compile(opt.filter, &ferr);
    if (!c->filter) return fail("bad filter '" + opt.filter + "': " + ferr);
  }

  // Ring and pool before the file: a resource failure leaves the file alone.
  unsigned seq = g_name_seq.fetch_add(1);
  char name[RTE_MEMPOOL_NAMESIZE];
  std::snprintf(name, sizeof(name), "cap_ring_%u", seq);
  c->ring = rte_ring_create(name, opt.ring_size, SOCKET_ID_ANY, RING_F_SC_DEQ | RING_F_EXACT_SZ);
  if (c->ring == nullptr)
    return fail(std::string("cannot create the capture ring: ") + rte_strerror(rte_errno));
  unsigned pool_size = opt.pool_size != 0 ? opt.pool_size : opt.ring_size + 511;
  unsigned cache = std::min(128u, pool_size / 4);
  std::snprintf(name, sizeof(name), "cap_pool_%u", seq);
  c->pool = rte_pktmbuf_pool_create(name, pool_size, cache, kMbufPrivSize,
                                    static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM + kCaptureSegRoom),
                                    SOCKET_ID_ANY);
  if (c->pool == nullptr) {
    std::string e = rte_strerror(rte_errno);
    c->free_resources();
    return fail("cannot create the capture pool: " + e);
  }

  std::string comment = "sluice capture " + std::to_string(c->id) + ": " +
                        (opt.label.empty() ? "dev " + opt.dev : opt.label) + ", direction " +
                        direction_name(opt.dir) +
                        (opt.filter.empty() ? "" : ", filter \"" + opt.filter + "\"");
  std::string err;
  if (!c->file.open(opt.path, &err, comment)) {
    c->free_resources();
    return fail(err);
  }
  if (dev != kNoDev) c->add_interface(dev);  // a device capture always has its IDB

  // TSC → CLOCK_REALTIME: the realtime sample bracketed by two TSC reads.
  c->hz = rte_get_tsc_hz();
  if (c->hz == 0) c->hz = 1;
  uint64_t t0 = rte_rdtsc();
  c->base_ns = realtime_ns();
  uint64_t t1 = rte_rdtsc();
  c->base_tsc = t0 + (t1 - t0) / 2;
  c->start_ns = c->base_ns;

  // The writer inherits the control thread's CPU set (the main lcore), never a worker's.
  try {
    Capture* cp = c.get();
    c->writer = std::thread([cp] { cp->writer_main(); });
  } catch (const std::system_error& e) {
    c->file.close();
    c->free_resources();
    return fail(std::string("cannot start the capture writer: ") + e.what());
  }
  char tname[16];
  std::snprintf(tname, sizeof(tname), "sluice-cap%u", c->id % 100000);
  pthread_setname_np(c->writer.native_handle(), tname);

  c->running = true;
  c->started = std::chrono::steady_clock::now();
  if (opt.tap) c->tap_id = dp_.net.add_tap(dptr, &CaptureManager::tap, c.get());
  uint32_t id = c->id;
  next_id_++;
  spdlog::info("capture {} started: {} direction {} filter \"{}\" file {} count {} snaplen {}", id,
               opt.label.empty() ? "dev " + opt.dev : opt.label, direction_name(opt.dir),
               opt.filter, opt.path, opt.count, c->snaplen);
  caps_.push_back(std::move(c));
  return id;
}

void CaptureManager::finish(Capture& c) {
  if (!c.running) return;
  // remove_tap returns after a grace period: no worker is inside the tap.
  // A sink's owner has made sure of the same before stopping it.
  if (c.tap_id != 0) dp_.net.remove_tap(c.tap_id);
  c.accepting.store(false, std::memory_order_relaxed);
  c.stop_req.store(true, std::memory_order_release);
  if (c.writer.joinable()) c.writer.join();
  c.free_resources();
  c.running = false;
  Totals t = c.totals();
  spdlog::info("capture {} finished: {} written, {} accepted, {} nombuf, {} ringfull{}{}", c.id,
               c.written.load(), t.accepted, t.nombuf, t.ringfull, c.error.empty() ? "" : "; ",
               c.error);
}

bool CaptureManager::stop(uint32_t id, bool sinks) {
  for (auto& c : caps_) {
    if (c->id == id && c->running && (c->opt.tap || sinks)) {
      finish(*c);
      return true;
    }
  }
  return false;
}

unsigned CaptureManager::stop_all(bool sinks) {
  unsigned n = 0;
  for (auto& c : caps_) {
    if (c->running && (c->opt.tap || sinks)) {
      finish(*c);
      n++;
    }
  }
  return n;
}

// A sink that is done (max_bytes) stays registered, refusing copies, until
// its owner stops it: workers may still hold its ctx.
void CaptureManager::poll() {
  auto now = std::chrono::steady_clock::now();
  for (auto& c : caps_) {
    if (!c->running || !c->opt.tap) continue;
    if (c->done.load(std::memory_order_acquire) ||
        (c->opt.seconds != 0 && now - c->started >= std::chrono::seconds(c->opt.seconds)))
      finish(*c);
  }
}

std::vector<CaptureInfo> CaptureManager::list(bool sinks) const {
  std::vector<CaptureInfo> v;
  for (auto& c : caps_) {
    if (!c->opt.tap && !sinks) continue;
    CaptureInfo i;
    info(c->id, &i);
    v.push_back(std::move(i));
  }
  return v;
}

void* CaptureManager::sink(uint32_t id) const {
  for (auto& c : caps_)
    if (c->id == id && c->running) return c.get();
  return nullptr;
}

bool CaptureManager::info(uint32_t id, CaptureInfo* out) const {
  for (auto& c : caps_) {
    if (c->id != id) continue;
    CaptureInfo& i = *out;
    i.id = c->id;
    i.dev = c->opt.dev;
    i.dir = c->opt.dir;
    i.file = c->opt.path;
    i.count = c->opt.count;
    i.snaplen = c->snaplen;
    i.filter = c->opt.filter;
    if (const PacketFilter* f = c->filter.get()) i.filter_engine = f->engine();
    i.seconds = c->opt.seconds;
    Totals t = c->totals();
    i.accepted = t.accepted;
    i.filtered = t.filtered;
    i.nombuf = t.nombuf;
    i.ringfull = t.ringfull;
    i.written = c->written.load(std::memory_order_relaxed);
    i.running = c->running;
    if (!c->running) i.error = c->error;  // the writer has been joined
    return true;
  }
  return false;
}

uint16_t CaptureManager::feed(Worker& w, const Device& dev, void* ctx, rte_mbuf* const* pkts,
                              uint16_t n, Direction dir) {
  auto* c = static_cast<Capture*>(ctx);
  if ((static_cast<uint8_t>(c->opt.dir) & static_cast<uint8_t>(dir)) == 0) return 0;
  if (!c->accepting.load(std::memory_order_relaxed)) return 0;
  Slot& s = c->slots[w.id % kCaptureMaxWorkers];
  const uint64_t count = c->opt.count;
  uint64_t tsc = 0;  // read once something is accepted (a filter may take nothing)
  const PacketFilter* filter = c->filter.get();
  uint16_t queued_total = 0;
  while (n != 0) {
    uint16_t b = n < kBurst ? n : kBurst;
    rte_mbuf* const* src = pkts;
    pkts += b;
    n = static_cast<uint16_t>(n - b);
    // The filter first: what it rejects is counted and costs nothing more.
    rte_mbuf* sel[kBurst];
    if (filter != nullptr) {
      uint16_t k = filter->select(src, b, sel);
      bump(s.filtered, b - k);
      if (k == 0) continue;
      src = sel;
      b = k;
    }
    if (tsc == 0) tsc = rte_rdtsc();
    // With a count, this worker stops copying once it has queued enough on
    // its own (the writer still writes exactly `count`).
    if (count != 0) {
      uint64_t queued =
          s.accepted.load(std::memory_order_relaxed) - s.ringfull.load(std::memory_order_relaxed);
      if (queued >= count) return queued_total;
      if (count - queued < b) b = static_cast<uint16_t>(count - queued);
    }
    // What the ring cannot take is counted as ringfull without being copied.
    const unsigned ring_room = rte_ring_free_count(c->ring);
    const uint16_t to_copy = ring_room < b ? static_cast<uint16_t>(ring_room) : b;
    const uint16_t skipped = static_cast<uint16_t>(b - to_copy);
    rte_mbuf* copies[kBurst];
    uint16_t k = 0;
    uint64_t nombuf = 0;
    for (uint16_t i = 0; i < to_copy; i++) {
      const rte_mbuf* m = src[i];
      if (m->pkt_len == 0) continue;
      const PktMeta& md = meta(m);
      const bool tagged = (md.flags & kFlagVlan) != 0;
      const uint32_t room = c->snaplen - (tagged ? 4 : 0);  // the tag is re-inserted on write
      rte_mbuf* cp = rte_pktmbuf_copy(m, c->pool, 0, m->pkt_len < room ? m->pkt_len : room);
      if (cp == nullptr) {
        nombuf++;
        continue;
      }
      if (traced(m)) [[unlikely]]
        trace_rec(
            w, m,
            dir == Direction::ingress ? "packet_rcv (ingress tap)" : "packet_rcv (egress tap)",
            dev.index, "copied to capture", kNoDev, "capture %u", c->id);
      PktMeta& cm = meta(cp);
      cm = md;
      cm.flags &= static_cast<uint8_t>(~kFlagTrace);  // the copy is the capture's, not traced
      cm.dev = dev.index;
      cm.user[kUserTsc] = tsc;
      cm.user[kUserOrigLen] = m->pkt_len + (tagged ? 4 : 0);
      cm.user[kUserDir] = static_cast<uint64_t>(dir);
      copies[k++] = cp;
    }
    unsigned enq =
        k != 0 ? rte_ring_mp_enqueue_burst(c->ring, reinterpret_cast<void**>(copies), k, nullptr)
               : 0;
    if (enq < k) rte_pktmbuf_free_bulk(copies + enq, k - enq);
    bump(s.accepted, k + skipped);
    bump(s.nombuf, nombuf);
    bump(s.ringfull, k - enq + skipped);
    queued_total = static_cast<uint16_t>(queued_total + enq);
  }
  return queued_total;
}

}  // namespace sluice
