#include "bridge/fdb.hh"

#include <atomic>
#include <stdexcept>

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>

namespace sluice::bridge {

namespace {
std::atomic<unsigned> g_fdb_serial{0};  // rte_hash names are global to the process

uint32_t fdb_hash(const void* key, uint32_t, uint32_t) {
  return Fdb::hash(*static_cast<const FdbKey*>(key));
}
}  // namespace

Fdb::Fdb(const std::string& name, uint32_t max_entries, rte_rcu_qsbr* qsbr) : max_(max_entries) {
  std::string hname = "fdb_" + std::to_string(g_fdb_serial.fetch_add(1)) + "_" + name;
  if (hname.size() > 24) hname.resize(24);
  rte_hash_parameters hp{};
  hp.name = hname.c_str();
  // Room for the limit plus slots still waiting for their grace period.
  hp.entries = std::max<uint32_t>(64, max_entries + max_entries / 8 + 8);
  hp.key_len = sizeof(FdbKey);
  hp.hash_func = fdb_hash;
  hp.hash_func_init_val = 0;
  hp.socket_id = SOCKET_ID_ANY;
  hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  h_ = rte_hash_create(&hp);
  if (h_ == nullptr)
    throw std::runtime_error("bridge " + name +
                             ": cannot create the FDB hash: " + rte_strerror(rte_errno));
  rte_hash_rcu_config rc{};
  rc.v = qsbr;
  rc.mode = RTE_HASH_QSBR_MODE_DQ;
  rc.free_key_data_func = free_entry;
  rc.key_data_ptr = this;
  if (int rv = rte_hash_rcu_qsbr_add(h_, &rc); rv != 0) {
    rte_hash_free(h_);
    throw std::runtime_error("bridge " + name + ": rte_hash_rcu_qsbr_add: " + rte_strerror(-rv));
  }
}

Fdb::~Fdb() {
  // Entries still in the table; those pending reclaim are freed by rte_hash_free.
  std::vector<FdbEntry*> live;
  for_each([&](const FdbEntry& e) { live.push_back(const_cast<FdbEntry*>(&e)); });
  rte_hash_free(h_);
  for (FdbEntry* e : live) delete e;
}

void Fdb::free_entry(void*, void* data) {
  delete static_cast<FdbEntry*>(data);
}

FdbEntry* Fdb::lookup(const rte_ether_addr& mac, uint16_t vid) const {
  FdbKey k = FdbKey::of(mac, vid);
  void* data = nullptr;
  if (rte_hash_lookup_data(h_, &k, &data) < 0) return nullptr;
  return static_cast<FdbEntry*>(data);
}

void Fdb::lookup_bulk(const FdbKey* keys, const uint32_t* hashes, unsigned n,
                      FdbEntry** out) const {
  const void* kp[RTE_HASH_LOOKUP_BULK_MAX];
  void* data[RTE_HASH_LOOKUP_BULK_MAX];
  uint64_t hits = 0;
  if (n == 0) return;
  for (unsigned i = 0; i < n; i++) kp[i] = &keys[i];
  rte_hash_lookup_with_hash_bulk_data(h_, kp, const_cast<uint32_t*>(hashes), n, &hits, data);
  for (unsigned i = 0; i < n; i++)
    out[i] = (hits >> i) & 1 ? static_cast<FdbEntry*>(data[i]) : nullptr;
}

Fdb::Result Fdb::add(const rte_ether_addr& mac, uint16_t vid, uint16_t port, uint8_t flags,
                     uint64_t now_ms) {
  FdbKey k = FdbKey::of(mac, vid);
  void* data = nullptr;
  if (rte_hash_lookup_data(h_, &k, &data) >= 0) {
    auto* e = static_cast<FdbEntry*>(data);
    if (flags == 0 && !e->is_dynamic()) return e->is_local() ? Result::is_local : Result::unchanged;
    // In place: kind and port are atomics that readers load once per lookup.
    bool same = e->flags.load(std::memory_order_relaxed) == flags &&
                e->port.load(std::memory_order_relaxed) == port;
    e->port.store(port, std::memory_order_relaxed);
    e->flags.store(flags, std::memory_order_relaxed);
    e->updated_ms.store(now_ms, std::memory_order_relaxed);
    if (!same) gen.fetch_add(1, std::memory_order_relaxed);
    return same ? Result::unchanged : Result::updated;
  }
  if (count_ >= max_) return Result::full;
  auto* n = new FdbEntry;
  n->mac = mac;
  n->vid = vid;
  n->flags.store(flags, std::memory_order_relaxed);
  n->port.store(port, std::memory_order_relaxed);
  n->updated_ms.store(now_ms, std::memory_order_relaxed);
  n->created_ms = now_ms;
  if (rte_hash_add_key_data(h_, &k, n) != 0) {
    delete n;
    return Result::error;
  }
  count_++;
  return Result::added;
}

bool Fdb::del_key(const FdbKey& k) {
  // The entry is freed by free_entry once the grace period is over.
  if (rte_hash_del_key(h_, &k) < 0) return false;
  count_--;
  gen.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Fdb::del(const rte_ether_addr& mac, uint16_t vid) {
  return del_key(FdbKey::of(mac, vid));
}

bool Fdb::iterate(const void** key, void** data, uint32_t* next) const {
  return rte_hash_iterate(h_, key, data, next) >= 0;
}

}  // namespace sluice::bridge
