// The main routing table of each family (net/ipv4/fib_trie.c,
// net/ipv6/ip6_fib.c): routes, their next hops deduplicated, and the two
// lookup structures workers read — rte_fib (DIR24_8, 2-byte next hops) for
// IPv4, rte_fib6 (TRIE) for IPv6.
//
// The double buffer: both buffers hold the same routes. Workers read the one
// named by the published Snapshot. A change is applied to the other buffer
// (prepare), a new Snapshot naming it is published, and after the RCU grace
// period — no worker can still be reading the old buffer — the same change
// is applied to the old one (complete). DPDK 22.11's rte_fib has no RCU hook
// of its own, and this way no reader ever sees a half-updated table.
//
// Control thread only; workers see the buffers and hops() through Snapshot.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/meta.hh"

struct rte_fib;
struct rte_fib6;

namespace sluice::l3 {

using Addr6 = std::array<uint8_t, 16>;

enum class RtType : uint8_t { none = 0, unicast = 1, local = 2, broadcast = 3 };
const char* rt_type_name(RtType t);

struct NextHop {
  uint32_t gw = 0;  // host order; 0 = on-link: the destination itself
  uint16_t dev = kNoDev;
  RtType type = RtType::none;
};

struct NextHop6Ref {
  uint8_t gw[16] = {};  // all zero = on-link
  uint16_t dev = kNoDev;
};

enum class RouteOrigin : uint8_t { connected, static_route };

struct Route {
  uint32_t prefix = 0;  // host order, masked
  uint8_t len = 0;
  uint32_t via = 0;  // 0 = on-link
  uint16_t dev = kNoDev;
  RouteOrigin origin = RouteOrigin::static_route;
  uint32_t nh = 0;
};

struct Route6 {
  Addr6 prefix{};  // masked
  uint8_t len = 0;
  Addr6 via{};  // all zero = on-link
  uint16_t dev = kNoDev;
  RouteOrigin origin = RouteOrigin::static_route;
  uint32_t nh = 0;
};

// What differs between the families (defined in fib.cc).
struct Af4 {
  using Table = rte_fib;
  using Prefix = uint32_t;  // host order
  using Hop = NextHop;
  using HopKey = std::tuple<uint16_t, uint32_t, uint8_t>;  // (dev, gw, type)
  using Route = l3::Route;
  static constexpr const char* kName = "fib";
  static constexpr const char* kTooManyHops = "too many next hops";
  static constexpr uint32_t kMaxRoutes = 1u << 15;  // rte_fib's max_routes (its RIB holds 2x nodes)
  static constexpr uint32_t kTbl8 = 1024;          // dir24_8 groups: one per /24 with longer routes
  // Groups a route may take beyond what its /24 shares: none counted (a
  // dir24_8 group serves every longer route of its /24).
  static uint32_t tbl8_cost(uint8_t) { return 0; }
  static Table* create(unsigned instance, int buffer, uint32_t tbl8);
  static void free(Table* t);
  static int add(Table* t, const Prefix& p, uint8_t len, uint64_t nh);
  static int del(Table* t, const Prefix& p, uint8_t len);
  static std::string str(const Prefix& p);
  static HopKey key(const Hop& h);
  static Hop hop_of(const Route& r);
};

struct Af6 {
  using Table = rte_fib6;
  using Prefix = Addr6;
  using Hop = NextHop6Ref;
  using HopKey = std::pair<Addr6, uint16_t>;  // (gw, dev)
  using Route = Route6;
  static constexpr const char* kName = "fib6";
  static constexpr const char* kTooManyHops = "too many IPv6 next hops";
  static constexpr uint32_t kMaxRoutes = 1u << 15;  // rte_fib6's max_routes
  static constexpr uint32_t kTbl8 = 4096;           // trie groups at least (512 bytes each)
  // rte_fib6's trie reserves a group per 8 bits beyond /24 that a route
  // goes past its closest covering route (five for a /64 with none): the
  // upper bound, one per 8 bits beyond /24, is what sluice counts.
  static uint32_t tbl8_cost(uint8_t len) { return len > 24 ? (len - 24u + 7u) / 8u : 0u; }
  static Table* create(unsigned instance, int buffer, uint32_t tbl8);
  static void free(Table* t);
  static int add(Table* t, const Prefix& p, uint8_t len, uint64_t nh);
  static int del(Table* t, const Prefix& p, uint8_t len);
  static std::string str(const Prefix& p);
  static HopKey key(const Hop& h);
  static Hop hop_of(const Route& r);
};

template <class Af>
class Fib {
 public:
  using Table = typename Af::Table;
  using Prefix = typename Af::Prefix;
  using Hop = typename Af::Hop;
  using Route = typename Af::Route;
  using Key = std::pair<Prefix, uint8_t>;  // (masked prefix, length)
  using Routes = std::map<Key, Route>;

  Fib() : hops_(1), refs_(1, 1) {}  // hop 0: no route
  ~Fib();
  Fib(const Fib&) = delete;
  Fib& operator=(const Fib&) = delete;

  // Creates the two buffers, each with room for `tbl8` groups beyond
  // Af::kTbl8 (the routes a topology brings, Af::tbl8_cost each): 0, or
  // the rte_errno of the failure (then none exists).
  int create(uint32_t tbl8 = 0);
  bool on() const { return buf_[0] != nullptr; }

  // Adds r (with a reference on its next hop): "" or why not, nothing changed.
  std::string insert(Route r);
  // Removes the route at it.
  void erase(typename Routes::const_iterator it);
  // Removes every route through dev (the device is going away).
  void erase_dev(uint16_t dev);
  const Routes& routes() const { return routes_; }
  // Next hops by index, what a buffer's lookup returns; [0] = no route.
  const std::vector<Hop>& hops() const { return hops_; }
  bool pending() const { return !ops_.empty(); }

  // Commit, step 1: the pending changes applied to the idle buffer, which is
  // returned for the new Snapshot (nullptr when off).
  Table* prepare();
  // Step 2, after the grace period: the same changes to the old buffer; the
  // prepared one is now the current one.
  void complete();
  Table* current() const { return buf_[active_]; }

 private:
  struct Op {  // a change not yet applied to both buffers; nh 0 = delete
    Prefix prefix;
    uint8_t len;
    uint32_t nh;
  };
  void apply(Table* t) const;
  uint32_t hop_get(const Hop& h);  // 0 = too many next hops
  void hop_put(uint32_t idx);

  Table* buf_[2] = {nullptr, nullptr};
  uint32_t tbl8_cap_ = 0, tbl8_used_ = 0;  // groups, counted with Af::tbl8_cost
  unsigned active_ = 0;  // which buffer the published snapshot names
  Routes routes_;
  std::vector<Op> ops_;
  // Next hops, deduplicated: key → index, with a reference count each.
  std::map<typename Af::HopKey, uint32_t> index_;
  std::vector<Hop> hops_;
  std::vector<uint32_t> refs_;
  std::vector<uint32_t> free_;
};

using Fib4 = Fib<Af4>;
using Fib6 = Fib<Af6>;
extern template class Fib<Af4>;
extern template class Fib<Af6>;

}  // namespace sluice::l3
