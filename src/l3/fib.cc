// The main tables: routes, deduplicated next hops, the rte_fib/rte_fib6
// double buffer (fib.hh says how it is swapped under RCU).
#include "l3/fib.hh"

#include <atomic>
#include <cstdio>
#include <cstring>

#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <spdlog/spdlog.h>

#include "l3/addr.hh"

namespace sluice::l3 {

namespace {
constexpr uint32_t kMaxNextHops = 32767;  // 2-byte DIR24_8 next hops
}  // namespace

const char* rt_type_name(RtType t) {
  switch (t) {
    case RtType::unicast:
      return "unicast";
    case RtType::local:
      return "local";
    case RtType::broadcast:
      return "broadcast";
    default:
      return "none";
  }
}

// ---- the families ---------------------------------------------------------------------------

rte_fib* Af4::create(unsigned instance, int buffer, uint32_t tbl8) {
  rte_fib_conf conf{};
  conf.type = RTE_FIB_DIR24_8;
  conf.default_nh = 0;
  conf.max_routes = kMaxRoutes;
  conf.rib_ext_sz = 0;
  conf.dir24_8.nh_sz = RTE_FIB_DIR24_8_2B;
  conf.dir24_8.num_tbl8 = tbl8;
  char name[32];
  std::snprintf(name, sizeof name, "l3fib%u_%d", instance, buffer);
  return rte_fib_create(name, SOCKET_ID_ANY, &conf);
}
void Af4::free(rte_fib* t) {
  rte_fib_free(t);
}
int Af4::add(rte_fib* t, const uint32_t& p, uint8_t len, uint64_t nh) {
  return rte_fib_add(t, p, len, nh);
}
int Af4::del(rte_fib* t, const uint32_t& p, uint8_t len) {
  return rte_fib_delete(t, p, len);
}
std::string Af4::str(const uint32_t& p) {
  return ipv4_str(p);
}
Af4::HopKey Af4::key(const NextHop& h) {
  return std::make_tuple(h.dev, h.gw, static_cast<uint8_t>(h.type));
}
NextHop Af4::hop_of(const Route& r) {
  NextHop nh;
  nh.dev = r.dev;
  nh.gw = r.via;
  nh.type = RtType::unicast;
  return nh;
}

rte_fib6* Af6::create(unsigned instance, int buffer, uint32_t tbl8) {
  rte_fib6_conf conf{};
  conf.type = RTE_FIB6_TRIE;
  conf.default_nh = 0;
  conf.max_routes = kMaxRoutes;
  // A 2-byte entry numbers at most 32767 groups (rte_fib6 refuses more with
  // EINVAL); beyond that the entries are 4 bytes (the 16M-entry first level
  // doubles to 64 MB).
  conf.trie.nh_sz = tbl8 < (1u << 15) - 64 ? RTE_FIB6_TRIE_2B : RTE_FIB6_TRIE_4B;
  conf.trie.num_tbl8 = tbl8;
  char name[32];
  std::snprintf(name, sizeof name, "l3fib6_%u_%d", instance, buffer);
  return rte_fib6_create(name, SOCKET_ID_ANY, &conf);
}
void Af6::free(rte_fib6* t) {
  rte_fib6_free(t);
}
int Af6::add(rte_fib6* t, const Addr6& p, uint8_t len, uint64_t nh) {
  return rte_fib6_add(t, p.data(), len, nh);
}
int Af6::del(rte_fib6* t, const Addr6& p, uint8_t len) {
  return rte_fib6_delete(t, p.data(), len);
}
std::string Af6::str(const Addr6& p) {
  return ipv6_str(p.data());
}
Af6::HopKey Af6::key(const NextHop6Ref& h) {
  Addr6 gw;
  std::memcpy(gw.data(), h.gw, 16);
  return std::make_pair(gw, h.dev);
}
NextHop6Ref Af6::hop_of(const Route6& r) {
  NextHop6Ref h;
  std::memcpy(h.gw, r.via.data(), 16);
  h.dev = r.dev;
  return h;
}

// ---- Fib ------------------------------------------------------------------------------------

template <class Af>
Fib<Af>::~Fib() {
  Af::free(buf_[0]);
  Af::free(buf_[1]);
}

template <class Af>
int Fib<Af>::create(uint32_t tbl8) {
  static std::atomic<unsigned> instances{0};
  const unsigned k = instances.fetch_add(1);
  tbl8_cap_ = Af::kTbl8 + tbl8;
  for (int b = 0; b < 2; b++) {
    buf_[b] = Af::create(k, b, tbl8_cap_);
    if (buf_[b] == nullptr) {
      const int err = rte_errno;
      Af::free(buf_[0]);
      buf_[0] = nullptr;
      return err;
    }
  }
  return 0;
}

template <class Af>
std::string Fib<Af>::insert(Route r) {
  const Key key{r.prefix, r.len};
  if (routes_.count(key))
    return "route " + Af::str(r.prefix) + "/" + std::to_string(r.len) + " exists";
  // The tables hold kMaxRoutes (local and connected routes included): refused
  // here, not accepted and then missing from the lookup.
  if (routes_.size() >= Af::kMaxRoutes)
    return std::string(Af::kName) + " is full: " + std::to_string(Af::kMaxRoutes) + " routes";
  const uint32_t cost = Af::tbl8_cost(r.len);
  if (tbl8_used_ + cost > tbl8_cap_)
    return std::string(Af::kName) + " is full: its " + std::to_string(tbl8_cap_) +
           " tbl8 groups are taken (sized at start for the topology's routes and " +
           std::to_string(Af::kTbl8) + " more)";
  r.nh = hop_get(Af::hop_of(r));
  if (r.nh == 0) return Af::kTooManyHops;
  tbl8_used_ += cost;
  routes_[key] = r;
  ops_.push_back(Op{r.prefix, r.len, r.nh});
  return "";
}

template <class Af>
void Fib<Af>::erase(typename Routes::const_iterator it) {
  hop_put(it->second.nh);
  tbl8_used_ -= Af::tbl8_cost(it->second.len);
  ops_.push_back(Op{it->second.prefix, it->second.len, 0});
  routes_.erase(it);
}

template <class Af>
void Fib<Af>::erase_dev(uint16_t dev) {
  for (auto it = routes_.cbegin(); it != routes_.cend();)
    if (it->second.dev == dev)
      erase(it++);
    else
      ++it;
}

template <class Af>
void Fib<Af>::apply(Table* t) const {
  if (t == nullptr) return;
  for (const Op& op : ops_) {
    int rc = op.nh != 0 ? Af::add(t, op.prefix, op.len, op.nh) : Af::del(t, op.prefix, op.len);
    if (rc != 0)
      spdlog::warn("l3: {} {} {}/{}: {}", Af::kName, op.nh ? "add" : "delete", Af::str(op.prefix),
                   op.len, rte_strerror(-rc));
  }
}

template <class Af>
typename Fib<Af>::Table* Fib<Af>::prepare() {
  Table* next = buf_[active_ ^ 1];
  apply(next);
  return next;
}

template <class Af>
void Fib<Af>::complete() {
  apply(buf_[active_]);
  if (on()) active_ ^= 1;
  ops_.clear();
}

template <class Af>
uint32_t Fib<Af>::hop_get(const Hop& h) {
  const auto key = Af::key(h);
  if (auto it = index_.find(key); it != index_.end()) {
    refs_[it->second]++;
    return it->second;
  }
  uint32_t idx;
  if (!free_.empty()) {
    idx = free_.back();
    free_.pop_back();
    hops_[idx] = h;
    refs_[idx] = 1;
  } else {
    if (hops_.size() > kMaxNextHops) return 0;
    idx = static_cast<uint32_t>(hops_.size());
    hops_.push_back(h);
    refs_.push_back(1);
  }
  index_[key] = idx;
  return idx;
}

template <class Af>
void Fib<Af>::hop_put(uint32_t idx) {
  if (idx == 0 || --refs_[idx] != 0) return;
  index_.erase(Af::key(hops_[idx]));
  free_.push_back(idx);
}

template class Fib<Af4>;
template class Fib<Af6>;

}  // namespace sluice::l3
