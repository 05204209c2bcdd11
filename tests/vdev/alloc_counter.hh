#pragma once
#include <atomic>
#include <cstdint>
namespace sluice::test {
// Heap allocations made on worker lcores since the last reset.
extern std::atomic<uint64_t> g_worker_allocs;
}  // namespace sluice::test
