#include "core/dataplane.hh"

#include <algorithm>

#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_pause.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "core/feature.hh"

namespace sluice {

Dataplane::Dataplane()
    : start_tsc(rte_rdtsc()),
      base_ctr_(new DevCounters[kMaxDevices]()),
      base_drops_(new std::array<uint64_t, kNumDropReasons>[kMaxDevices]()) {}

Dataplane::~Dataplane() {
  // Features go first (they hold taps and handlers in the Net), newest first.
  while (!feature_order_.empty()) feature_order_.pop_back();
  features_.clear();
}

rte_mempool* Dataplane::pool_for_socket(unsigned socket) const {
  auto it = pools.find(socket);
  if (it != pools.end()) return it->second;
  return pools.empty() ? nullptr : pools.begin()->second;
}

DevCounters Dataplane::raw_counters(uint16_t dev) const {
  DevCounters s{};
  for (auto& w : workers) {
    const DevCounters& c = w->ctr[dev];
    s.rx_packets += c.rx_packets;
    s.rx_bytes += c.rx_bytes;
    s.rx_dropped += c.rx_dropped;
    s.rx_nohandler += c.rx_nohandler;
    s.rx_otherhost_dropped += c.rx_otherhost_dropped;
    s.multicast += c.multicast;
    s.tx_packets += c.tx_packets;
    s.tx_bytes += c.tx_bytes;
    s.tx_dropped += c.tx_dropped;
  }
  return s;
}

std::array<uint64_t, kNumDropReasons> Dataplane::raw_drops(uint16_t dev) const {
  std::array<uint64_t, kNumDropReasons> s{};
  for (auto& w : workers)
    for (unsigned r = 0; r < kNumDropReasons; r++) s[r] += w->drops[dev][r];
  if (ctl_drops_)
    for (unsigned r = 0; r < kNumDropReasons; r++) s[r] += ctl_drops_[dev][r];
  return s;
}

void Dataplane::ctl_drop(rte_mbuf* m, uint16_t dev, DropReason r) {
  if (!ctl_drops_) ctl_drops_.reset(new std::array<uint64_t, kNumDropReasons>[kMaxDevices]());
  if (dev < kMaxDevices) ctl_drops_[dev][static_cast<unsigned>(r)]++;
  rte_pktmbuf_free(m);
}

DevCounters Dataplane::counters(uint16_t dev) const {
  DevCounters s = raw_counters(dev);
  const DevCounters& b = base_ctr_[dev];
  s.rx_packets -= b.rx_packets;
  s.rx_bytes -= b.rx_bytes;
  s.rx_dropped -= b.rx_dropped;
  s.rx_nohandler -= b.rx_nohandler;
  s.rx_otherhost_dropped -= b.rx_otherhost_dropped;
  s.multicast -= b.multicast;
  s.tx_packets -= b.tx_packets;
  s.tx_bytes -= b.tx_bytes;
  s.tx_dropped -= b.tx_dropped;
  for (auto [upper, lower] : folds_) {
    if (upper != dev || lower == dev) continue;
    const DevCounters l = counters(lower);
    s.rx_packets += l.rx_packets;
    s.rx_bytes += l.rx_bytes;
    s.rx_dropped += l.rx_dropped;
    s.rx_nohandler += l.rx_nohandler;
    s.rx_otherhost_dropped += l.rx_otherhost_dropped;
    s.multicast += l.multicast;
    s.tx_packets += l.tx_packets;
    s.tx_bytes += l.tx_bytes;
    s.tx_dropped += l.tx_dropped;
  }
  return s;
}

std::array<uint64_t, kNumDropReasons> Dataplane::drops(uint16_t dev) const {
  auto s = raw_drops(dev);
  for (unsigned r = 0; r < kNumDropReasons; r++) s[r] -= base_drops_[dev][r];
  return s;
}

std::array<StageStats, kMaxStages> Dataplane::runtime() const {
  std::array<StageStats, kMaxStages> s{};
  for (auto& w : workers)
    for (size_t i = 0; i < s.size(); i++) {
      s[i].calls += w->runtime.stats[i].calls;
      s[i].packets += w->runtime.stats[i].packets;
      s[i].cycles += w->runtime.stats[i].cycles;
    }
  for (size_t i = 0; i < s.size(); i++) {
    s[i].calls -= base_runtime_[i].calls;
    s[i].packets -= base_runtime_[i].packets;
    s[i].cycles -= base_runtime_[i].cycles;
  }
  return s;
}

// Counters are only ever written by their worker; clearing records a baseline.
void Dataplane::clear_stats() {
  for (uint16_t d = 0; d < kMaxDevices; d++) {
    base_ctr_[d] = raw_counters(d);
    base_drops_[d] = raw_drops(d);
  }
  clear_runtime();
  for (auto& fn : clear_fns_) fn();
}

void Dataplane::clear_runtime() {
  base_runtime_ = {};
  base_runtime_ = runtime();
}

void Dataplane::add_timer(uint64_t period_ms, std::function<void(uint64_t)> fn) {
  timers_.push_back(Timer{period_ms, 0, std::move(fn)});
}

bool Dataplane::unregister_device(Device& d) {
  if (!net.registered(d)) return false;
  for (auto& fn : unregister_fns_) fn(d);
  const uint16_t i = d.index;
  std::erase_if(folds_, [i](const auto& f) { return f.first == i || f.second == i; });
  return net.unregister_device(d);
}

void Dataplane::add_shutdown(std::function<void()> fn) {
  shutdown_.push_back(std::move(fn));
}

void Dataplane::run_timers(uint64_t now_ms) {
  for (size_t i = 0; i < timers_.size(); i++) {  // a timer may add timers
    if (now_ms >= timers_[i].next_ms) {
      timers_[i].next_ms = now_ms + timers_[i].period_ms;
      auto fn = timers_[i].fn;
      fn(now_ms);
    }
  }
}

void Dataplane::run_shutdown() {
  while (!shutdown_.empty()) {
    auto fn = std::move(shutdown_.back());
    shutdown_.pop_back();
    fn();
  }
}

void Dataplane::build() {
  add_vlans();
  setup_features(*this);  // a feature whose devices carry VLANs (a bond) calls add_vlans again
  for (auto& v : topo.vlans)
    if (net.find(v.name) == nullptr)
      throw std::runtime_error("vlan '" + v.name + "': unknown link '" + v.link + "'");
}

// A link may be a sub-device defined later in the file, or a device a
// feature makes (a bond): those are made when it calls this again.
void Dataplane::add_vlans() {
  std::vector<const config::Vlan*> todo;
  for (auto& v : topo.vlans)
    if (net.find(v.name) == nullptr) todo.push_back(&v);
  while (!todo.empty()) {
    size_t before = todo.size();
    for (auto it = todo.begin(); it != todo.end();) {
      Device* lower = net.find((*it)->link);
      if (lower == nullptr) {
        ++it;
        continue;
      }
      std::string err;
      uint16_t proto = (*it)->protocol == "802.1ad" ? 0x88a8 : 0x8100;
      if (net.add_vlan(*lower, (*it)->name, static_cast<uint16_t>((*it)->id), proto, &err) ==
          nullptr)
        throw std::runtime_error("vlan '" + (*it)->name + "': " + err);
      spdlog::info("vlan {}: on {} id {}", (*it)->name, (*it)->link, (*it)->id);
      it = todo.erase(it);
    }
    if (todo.size() == before) break;  // their links do not exist (yet)
  }
}

void Dataplane::start_workers() {
  for (auto& w : workers) w->polls.clear();
  for (auto& pi : ports)
    for (auto& [wid, q] : pi.pollers)
      workers[wid]->polls.push_back(RxPoll{pi.port_id, q, net.dev(pi.dev)});
  stop_workers_.store(false);
  struct Launch {
    static int main(void* arg) {
      auto* w = static_cast<Worker*>(arg);
      w->run(*w->owner);
      return 0;
    }
  };
  for (auto& w : workers) {
    w->owner = this;
    if (int rc = rte_eal_remote_launch(Launch::main, w.get(), w->lcore); rc != 0)
      throw std::runtime_error("cannot launch worker on lcore " + std::to_string(w->lcore));
  }
  workers_running_ = true;
}

void Dataplane::stop_workers() {
  stop_workers_.store(true);
  for (auto& w : workers) rte_eal_wait_lcore(w->lcore);
  workers_running_ = false;
}

bool Dataplane::pause_workers(unsigned timeout_ms) {
  if (!workers_running_ || workers.empty()) return true;  // nobody reads: nothing to wait for
  park_.store(true, std::memory_order_seq_cst);
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t deadline = rte_get_tsc_cycles() + hz * timeout_ms / 1000;
  while (parked_.load(std::memory_order_acquire) < workers.size()) {
    if (rte_get_tsc_cycles() > deadline) {
      resume_workers();
      return false;
    }
    rte_pause();
  }
  return true;
}

void Dataplane::resume_workers() {
  park_.store(false, std::memory_order_release);
  while (parked_.load(std::memory_order_acquire) != 0) rte_pause();  // all back online
}

void Dataplane::park(Worker& w) {
  rcu.offline(w.id);  // the control thread's synchronize() does not wait for us
  parked_.fetch_add(1, std::memory_order_acq_rel);
  while (park_.load(std::memory_order_acquire)) rte_pause();
  rcu.online(w.id);
  parked_.fetch_sub(1, std::memory_order_acq_rel);
}

}  // namespace sluice
