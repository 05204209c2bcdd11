#include "core/rcu.hh"

#include <cstdlib>
#include <new>

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

namespace sluice {

Rcu::Rcu(unsigned max_threads) {
  size_t sz = rte_rcu_qsbr_get_memsize(max_threads);
  // Plain heap memory: the QSBR variable is only touched by this process.
  void* mem = std::aligned_alloc(RTE_CACHE_LINE_SIZE,
                                 (sz + RTE_CACHE_LINE_SIZE - 1) & ~size_t(RTE_CACHE_LINE_SIZE - 1));
  if (mem == nullptr) throw std::bad_alloc();
  v_ = static_cast<rte_rcu_qsbr*>(mem);
  rte_rcu_qsbr_init(v_, max_threads);
}

Rcu::~Rcu() {
  std::free(v_);
}

void Rcu::register_thread(unsigned id) {
  rte_rcu_qsbr_thread_register(v_, id);
}
void Rcu::online(unsigned id) {
  rte_rcu_qsbr_thread_online(v_, id);
}
void Rcu::offline(unsigned id) {
  rte_rcu_qsbr_thread_offline(v_, id);
}
void Rcu::quiescent(unsigned id) {
  rte_rcu_qsbr_quiescent(v_, id);
}
void Rcu::synchronize() {
  rte_rcu_qsbr_synchronize(v_, RTE_QSBR_THRID_INVALID);
}

}  // namespace sluice
