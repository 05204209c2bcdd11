// Counts heap allocations made on worker lcores, so a test can assert that
// the packet path allocates nothing: operator new is replaced for the whole
// process, and malloc/calloc/realloc are wrapped (-Wl,--wrap) for sluice's
// own objects linked into this binary.
#include "alloc_counter.hh"

#include <cstdlib>
#include <new>

#include <rte_lcore.h>

namespace sluice::test {
std::atomic<uint64_t> g_worker_allocs{0};
}

namespace {
inline void count() {
  unsigned id = rte_lcore_id();
  if (id != LCORE_ID_ANY && id != rte_get_main_lcore())
    sluice::test::g_worker_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* __real_malloc(size_t n);
void* __real_calloc(size_t n, size_t s);
void* __real_realloc(void* p, size_t n);
void* __wrap_malloc(size_t n) {
  count();
  return __real_malloc(n);
}
void* __wrap_calloc(size_t n, size_t s) {
  count();
  return __real_calloc(n, s);
}
void* __wrap_realloc(void* p, size_t n) {
  count();
  return __real_realloc(p, n);
}
}

void* operator new(size_t n) {
  count();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  return operator new(n);
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  count();
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return operator new(n, std::nothrow);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}
