// Quiescent-state RCU (rte_rcu_qsbr) for everything the workers read while
// the control thread replaces it: tap lists, protocol tables, hook lists,
// FIBs. Writers publish a new immutable object, then retire() the old one;
// it is freed after every online worker has reported a quiescent state.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

struct rte_rcu_qsbr;

namespace sluice {

class Rcu {
 public:
  explicit Rcu(unsigned max_threads = 64);
  ~Rcu();
  Rcu(const Rcu&) = delete;
  Rcu& operator=(const Rcu&) = delete;

  // Worker side.
  void register_thread(unsigned id);
  void online(unsigned id);
  void offline(unsigned id);
  void quiescent(unsigned id);

  // Control side: blocks until every online reader passed a quiescent state.
  void synchronize();

  // Replace *slot with next; free the previous object after a grace period.
  template <class T>
  void publish(std::atomic<const T*>& slot, const T* next) {
    const T* prev = slot.exchange(next, std::memory_order_acq_rel);
    if (prev != nullptr) {
      synchronize();
      delete prev;
    }
  }

  rte_rcu_qsbr* qsbr() const { return v_; }

 private:
  rte_rcu_qsbr* v_ = nullptr;
};

}  // namespace sluice
