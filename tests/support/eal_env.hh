// One EAL per test process: --no-huge, --no-pci, a unique file prefix, and a
// packet pool with sluice's private area. Vdevs are probed by the tests that
// need them (rte_dev_probe).
#pragma once

#include <rte_mempool.h>

namespace sluice::test {

// The shared packet pool (created by the environment).
rte_mempool* pool();

}  // namespace sluice::test
