// The bridge forwarding database (net/bridge/br_fdb.c): (MAC, VID) → port,
// on an rte_hash with lock-free readers (RW_CONCURRENCY_LF + EXT_TABLE) and
// RCU QSBR reclamation in defer-queue mode (DPDK-NOTES §3).
//
// Writers: the control thread only (rte_hash allows one writer). Workers ask
// for new entries through a ring (BridgeSys drains it); they refresh
// `updated_ms` and move `port` of an existing dynamic entry in place (plain
// atomic stores into the entry, never into the hash), at most once a second
// for the refresh — grout measured that a per-packet last-seen write costs a
// third of the throughput.
//
// Entry kinds: local (port MACs and the bridge MAC: pass up, never forward,
// never age), static (user: no ageing, no roaming), dynamic (learned).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_hash_crc.h>

struct rte_hash;
struct rte_rcu_qsbr;

namespace sluice::bridge {

enum FdbFlag : uint8_t {
  kFdbLocal = 1 << 0,
  kFdbStatic = 1 << 1,
};

// The 48 bits of a MAC address as one integer (the address's bytes in
// memory order, loaded little-endian). `at` must have two readable bytes
// after the address — true of both addresses of an Ethernet header — so
// this is one 8-byte load and a mask, not six byte stores that a later
// 8-byte load would have to wait for (a store-forwarding stall).
inline uint64_t mac48_in_header(const rte_ether_addr& at) {
  uint64_t v;
  std::memcpy(&v, at.addr_bytes, 8);
  return v & 0xffffffffffffULL;
}
inline uint64_t mac48(const rte_ether_addr& a) {
  uint64_t v = 0;
  std::memcpy(&v, a.addr_bytes, 6);
  return v;
}

// The hash key: MAC | VID << 48 in one word, padded to 16 bytes so that
// rte_hash compares keys with its 16-byte vector compare instead of a
// memcmp call (DPDK's cmp_jump_table has no 8-byte entry). The hash is
// one CRC32 instruction over the first word (Fdb::hash).
struct alignas(16) FdbKey {
  uint64_t w = 0;
  uint64_t pad = 0;
  static FdbKey of_bits(uint64_t mac, uint16_t vid) {
    FdbKey k;
    k.w = mac | uint64_t(vid) << 48;
    return k;
  }
  static FdbKey of(const rte_ether_addr& a, uint16_t vid) { return of_bits(mac48(a), vid); }
};
static_assert(sizeof(FdbKey) == 16);

struct FdbEntry {
  rte_ether_addr mac;
  uint16_t vid = 0;
  std::atomic<uint8_t> flags{0};        // FdbFlag
  std::atomic<uint16_t> port{0xffff};   // device index (the bridge's own for its MAC)
  std::atomic<uint64_t> updated_ms{0};  // last seen (bridge clock)
  uint64_t created_ms = 0;

  uint8_t kind() const { return flags.load(std::memory_order_relaxed); }
  bool is_local() const { return kind() & kFdbLocal; }
  bool is_static() const { return kind() & kFdbStatic; }
  bool is_dynamic() const { return !(kind() & (kFdbLocal | kFdbStatic)); }
};

class Fdb {
 public:
  // max_entries: the size limit (max_fdb_entries); the hash is sized for it.
  Fdb(const std::string& name, uint32_t max_entries, rte_rcu_qsbr* qsbr);
  ~Fdb();
  Fdb(const Fdb&) = delete;
  Fdb& operator=(const Fdb&) = delete;

  // ---- readers (any thread, inside an RCU read side: workers between quiescent states)
  FdbEntry* lookup(const rte_ether_addr& mac, uint16_t vid) const;
  // keys[0..n) with their hashes (Fdb::hash), n <= 64; out[i] = entry or nullptr.
  void lookup_bulk(const FdbKey* keys, const uint32_t* hashes, unsigned n, FdbEntry** out) const;
  // The hash rte_hash uses for a key (also its hash_func).
  static uint32_t hash(const FdbKey& k) { return rte_hash_crc_8byte(k.w, 0); }

  // ---- writer (control thread)
  enum class Result : uint8_t { added, updated, unchanged, full, is_local, error };
  // Adds or replaces. A dynamic request never overwrites a local or static entry.
  Result add(const rte_ether_addr& mac, uint16_t vid, uint16_t port, uint8_t flags,
             uint64_t now_ms);
  bool del(const rte_ether_addr& mac, uint16_t vid);
  // Deletes every entry pred(e) is true for; returns how many.
  template <class Pred>
  unsigned del_if(Pred pred) {
    std::vector<FdbKey> keys;
    for_each([&](const FdbEntry& e) {
      if (pred(e)) keys.push_back(FdbKey::of(e.mac, e.vid));
    });
    for (auto& k : keys) del_key(k);
    return static_cast<unsigned>(keys.size());
  }
  template <class F>
  void for_each(F f) const {
    const void* key;
    void* data;
    uint32_t next = 0;
    while (iterate(&key, &data, &next)) f(*static_cast<const FdbEntry*>(data));
  }
  uint32_t size() const { return count_; }

  // Bumped on every deletion (control thread) and every move (workers):
  // invalidates the workers' caches of verified sources.
  std::atomic<uint32_t> gen{0};
  uint32_t max_entries() const { return max_; }

 private:
  bool iterate(const void** key, void** data, uint32_t* next) const;
  bool del_key(const FdbKey& k);
  static void free_entry(void* self, void* data);

  rte_hash* h_ = nullptr;
  uint32_t max_ = 0;
  uint32_t count_ = 0;  // own count: rte_hash_count() includes slots pending reclaim
};

}  // namespace sluice::bridge
