// What the fuzz targets share: the EAL brought up once per process
// (--no-huge, --no-shconf, no PCI) and the dataplane of topo/rx.yaml built
// on it through the real PMD glue (net_null ports) and every feature's
// setup, as sluiced builds it.
#pragma once

#include <memory>
#include <string>

#include "core/dataplane.hh"

namespace sluice::fuzz {

// tests/fuzz/topo/NAME in the source tree.
std::string topo_path(const std::string& name);

// rte_eal_init with `lcores` (the first is this thread), --no-huge -m MB.
void init_eal(const char* prog, const std::string& lcores, unsigned memory_mb);

// topo/rx.yaml loaded (EAL section ignored: init_eal came first), its ports
// set up and the dataplane built. Aborts on any error.
std::unique_ptr<Dataplane> build_rx_dataplane();

// The process is quiet unless SLUICE_FUZZ_VERBOSE is set (sluice's spdlog
// logging, DPDK's log).
void quiet_logs();

}  // namespace sluice::fuzz
