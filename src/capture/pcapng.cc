#include "capture/pcapng.hh"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

#include "core/meta.hh"
#include "sluice/version.hh"

namespace sluice {
namespace {

constexpr uint32_t kBlockShb = 0x0A0D0D0A;
constexpr uint32_t kBlockIdb = 0x00000001;
constexpr uint32_t kBlockIsb = 0x00000005;
constexpr uint32_t kBlockEpb = 0x00000006;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;

// Option codes.
constexpr uint16_t kOptEnd = 0;
constexpr uint16_t kOptComment = 1;
constexpr uint16_t kShbHardware = 2;
constexpr uint16_t kShbOs = 3;
constexpr uint16_t kShbUserappl = 4;
constexpr uint16_t kIfName = 2;
constexpr uint16_t kIfDescription = 3;
constexpr uint16_t kIfMacaddr = 6;
constexpr uint16_t kIfTsresol = 9;
constexpr uint16_t kEpbFlags = 2;
constexpr uint16_t kIsbStarttime = 2;
constexpr uint16_t kIsbEndtime = 3;
constexpr uint16_t kIsbIfrecv = 4;
constexpr uint16_t kIsbIfdrop = 5;
constexpr uint16_t kIsbUsrdeliv = 8;

constexpr uint32_t kEpbInbound = 1;
constexpr uint32_t kEpbOutbound = 2;

constexpr size_t kFileBuffer = 1 << 20;

inline uint32_t pad4(uint32_t n) {
  return (4 - (n & 3)) & 3;
}

// Assembles one small block (SHB, IDB, ISB) in a reused byte vector.
class Block {
 public:
  Block(std::vector<uint8_t>& b, uint32_t type) : b_(b) {
    b_.clear();
    u32(type);
    u32(0);  // total length, patched by finish()
  }
  void u16(uint16_t v) { raw(&v, 2); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void ts(uint64_t ns) {  // pcapng timestamps: high word first, each in host order
    u32(static_cast<uint32_t>(ns >> 32));
    u32(static_cast<uint32_t>(ns));
  }
  void raw(const void* p, size_t n) {
    auto* c = static_cast<const uint8_t*>(p);
    b_.insert(b_.end(), c, c + n);
  }
  void opt(uint16_t code, const void* p, size_t n) {
    if (n > 0xffff) n = 0xffff;
    u16(code);
    u16(static_cast<uint16_t>(n));
    raw(p, n);
    b_.resize(b_.size() + pad4(static_cast<uint32_t>(n)), 0);
    opts_ = true;
  }
  void opt_str(uint16_t code, const std::string& s) {
    if (!s.empty()) opt(code, s.data(), s.size());
  }
  void opt_u64(uint16_t code, uint64_t v) { opt(code, &v, 8); }
  void opt_ts(uint16_t code, uint64_t ns) {
    uint32_t v[2] = {static_cast<uint32_t>(ns >> 32), static_cast<uint32_t>(ns)};
    opt(code, v, 8);
  }
  // Closes the option list (if any) and writes both length fields.
  const std::vector<uint8_t>& finish() {
    if (opts_) u32(kOptEnd);  // opt_endofopt: code 0, length 0
    uint32_t len = static_cast<uint32_t>(b_.size()) + 4;
    std::memcpy(b_.data() + 4, &len, 4);
    u32(len);
    return b_;
  }

 private:
  std::vector<uint8_t>& b_;
  bool opts_ = false;
};

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto start = line.find_first_not_of(" \t", colon + 1);
        if (start != std::string::npos) return line.substr(start);
      }
    }
  }
  utsname u{};
  return uname(&u) == 0 ? std::string(u.machine) : std::string();
}

std::string os_name() {
  utsname u{};
  if (uname(&u) != 0) return "Linux";
  return std::string(u.sysname) + " " + u.release;
}

uint32_t epb_direction(Direction dir) {
  switch (dir) {
    case Direction::ingress:
      return kEpbInbound;
    case Direction::egress:
      return kEpbOutbound;
    default:
      return 0;
  }
}

}  // namespace

uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

PcapngWriter::~PcapngWriter() {
  close();
}

bool PcapngWriter::open(const std::string& path, std::string* error, const std::string& comment) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!open_fd(fd, error, comment)) {
    if (error) *error = "cannot write " + path + ": " + *error;
    return false;
  }
  return true;
}

bool PcapngWriter::open_fd(int fd, std::string* error, const std::string& comment) {
  close();
  FILE* f = fdopen(fd, "wb");
  if (f == nullptr) {
    if (error) *error = std::strerror(errno);
    ::close(fd);
    return false;
  }
  return start(f, error, comment);
}

bool PcapngWriter::start(FILE* f, std::string* error, const std::string& comment) {
  buf_.reset(new char[kFileBuffer]);
  setvbuf(f, buf_.get(), _IOFBF, kFileBuffer);
  f_ = f;
  failed_ = false;
  error_.clear();
  snaplen_.clear();
  packets_ = 0;
  bytes_ = 0;

  Block b(blk_, kBlockShb);
  b.u32(kByteOrderMagic);
  b.u16(1);             // major version
  b.u16(0);             // minor version
  b.u64(~uint64_t(0));  // section length: not specified
  b.opt_str(kOptComment, comment);
  b.opt_str(kShbHardware, cpu_model());
  b.opt_str(kShbOs, os_name());
  b.opt_str(kShbUserappl, std::string("sluice ") + SLUICE_VERSION);
  const auto& blk = b.finish();
  put(blk.data(), blk.size());
  if (!flush()) {
    if (error) *error = error_;
    close();
    return false;
  }
  return true;
}

void PcapngWriter::put(const void* p, size_t n) {
  if (f_ == nullptr || failed_ || n == 0) return;
  if (std::fwrite(p, 1, n, f_) != n) {
    failed_ = true;
    error_ = std::strerror(errno);
    return;
  }
  bytes_ += n;
}

uint32_t PcapngWriter::add_interface(const PcapngInterface& itf) {
  Block b(blk_, kBlockIdb);
  b.u16(itf.linktype);
  b.u16(0);  // reserved
  b.u32(itf.snaplen);
  b.opt_str(kIfName, itf.name);
  b.opt_str(kIfDescription, itf.description);
  if (itf.mac) b.opt(kIfMacaddr, itf.mac->addr_bytes, RTE_ETHER_ADDR_LEN);
  uint8_t tsresol = 9;  // 10^-9 s
  b.opt(kIfTsresol, &tsresol, 1);
  const auto& blk = b.finish();
  put(blk.data(), blk.size());
  snaplen_.push_back(itf.snaplen == 0 ? UINT32_MAX : itf.snaplen);
  return static_cast<uint32_t>(snaplen_.size() - 1);
}

void PcapngWriter::epb(uint32_t ifid, uint64_t ts_ns, const Piece* pieces, unsigned npieces,
                       uint32_t caplen, uint32_t origlen, Direction dir) {
  uint32_t flags = epb_direction(dir);
  uint32_t opt_len = flags != 0 ? 8 + 4 : 0;  // epb_flags + opt_endofopt
  uint32_t total = 28 + caplen + pad4(caplen) + opt_len + 4;
  uint32_t hdr[7] = {
      kBlockEpb, total,  ifid, static_cast<uint32_t>(ts_ns >> 32), static_cast<uint32_t>(ts_ns),
      caplen,    origlen};
  put(hdr, sizeof(hdr));
  uint32_t left = caplen;
  for (unsigned i = 0; i < npieces && left != 0; i++) {
    uint32_t n = pieces[i].n < left ? pieces[i].n : left;
    put(pieces[i].p, n);
    left -= n;
  }
  static const uint8_t zeros[4] = {0, 0, 0, 0};
  put(zeros, pad4(caplen));
  if (flags != 0) {
    struct {
      uint16_t code, len;
      uint32_t value;
      uint32_t end;
    } opt{kEpbFlags, 4, flags, kOptEnd};
    static_assert(sizeof(opt) == 12);
    put(&opt, sizeof(opt));
  }
  put(&total, 4);
  packets_++;
}

void PcapngWriter::write_packet(uint32_t ifid, uint64_t ts_ns, const void* data, uint32_t caplen,
                                uint32_t origlen, Direction dir) {
  if (ifid >= snaplen_.size()) return;
  if (caplen > snaplen_[ifid]) caplen = snaplen_[ifid];
  Piece p{data, caplen};
  epb(ifid, ts_ns, &p, 1, caplen, origlen, dir);
}

void PcapngWriter::write_mbuf(uint32_t ifid, uint64_t ts_ns, const rte_mbuf* m, Direction dir,
                              uint32_t origlen) {
  if (ifid >= snaplen_.size()) return;
  const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
  uint32_t len = m->pkt_len;
  if (m->nb_segs > 1) {  // linearise (the writer thread may allocate)
    scratch_.resize(len);
    data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, scratch_.data()));
  }
  const PktMeta& md = meta(m);
  bool tagged = (md.flags & kFlagVlan) != 0 && len >= 2 * RTE_ETHER_ADDR_LEN;
  uint8_t tag[4];
  Piece pieces[3];
  unsigned np = 0;
  uint32_t wire = len;
  if (tagged) {
    uint16_t proto = rte_cpu_to_be_16(md.vlan_proto != 0 ? md.vlan_proto : RTE_ETHER_TYPE_VLAN);
    uint16_t tci = rte_cpu_to_be_16(md.vlan_tci);
    std::memcpy(tag, &proto, 2);
    std::memcpy(tag + 2, &tci, 2);
    pieces[np++] = Piece{data, 2 * RTE_ETHER_ADDR_LEN};
    pieces[np++] = Piece{tag, 4};
    pieces[np++] = Piece{data + 2 * RTE_ETHER_ADDR_LEN, len - 2 * RTE_ETHER_ADDR_LEN};
    wire += 4;
  } else {
    pieces[np++] = Piece{data, len};
  }
  uint32_t caplen = wire < snaplen_[ifid] ? wire : snaplen_[ifid];
  if (origlen == 0) origlen = wire;
  if (origlen < caplen) origlen = caplen;
  epb(ifid, ts_ns, pieces, np, caplen, origlen, dir);
}

void PcapngWriter::write_stats(uint32_t ifid, uint64_t ts_ns, const PcapngStats& s) {
  if (ifid >= snaplen_.size()) return;
  Block b(blk_, kBlockIsb);
  b.u32(ifid);
  b.ts(ts_ns);
  b.opt_str(kOptComment, s.comment);
  if (s.start_ns != 0) b.opt_ts(kIsbStarttime, s.start_ns);
  if (s.end_ns != 0) b.opt_ts(kIsbEndtime, s.end_ns);
  if (s.ifrecv) b.opt_u64(kIsbIfrecv, *s.ifrecv);
  if (s.ifdrop) b.opt_u64(kIsbIfdrop, *s.ifdrop);
  if (s.usrdeliv) b.opt_u64(kIsbUsrdeliv, *s.usrdeliv);
  const auto& blk = b.finish();
  put(blk.data(), blk.size());
}

bool PcapngWriter::flush() {
  if (f_ == nullptr) return !failed_;
  if (!failed_ && std::fflush(f_) != 0) {
    failed_ = true;
    error_ = std::strerror(errno);
  }
  return !failed_;
}

bool PcapngWriter::close() {
  if (f_ == nullptr) return !failed_;
  flush();
  if (std::fclose(f_) != 0 && !failed_) {
    failed_ = true;
    error_ = std::strerror(errno);
  }
  f_ = nullptr;
  buf_.reset();
  return !failed_;
}

}  // namespace sluice
