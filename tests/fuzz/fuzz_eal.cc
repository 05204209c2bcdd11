#include "fuzz/fuzz_eal.hh"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <vector>

#include <rte_eal.h>
#include <rte_memory.h>
#include <sanitizer/lsan_interface.h>
#include <rte_log.h>

#include "config/topology.hh"
#include "pmd_glue/pmd.hh"

#ifndef SLUICE_SOURCE_DIR
#error "SLUICE_SOURCE_DIR must name the source tree"
#endif

namespace sluice::fuzz {

std::string topo_path(const std::string& name) {
  return std::string(SLUICE_SOURCE_DIR) + "/tests/fuzz/topo/" + name;
}

void quiet_logs() {
  if (getenv("SLUICE_FUZZ_VERBOSE") != nullptr) return;
  spdlog::set_level(spdlog::level::off);
  rte_log_set_global_level(RTE_LOG_EMERG);
}

void init_eal(const char* prog, const std::string& lcores, unsigned memory_mb) {
  std::vector<std::string> args = {prog,
                                   "-l",
                                   lcores,
                                   "--no-huge",
                                   "-m",
                                   std::to_string(memory_mb),
                                   "--no-pci",
                                   "--no-shconf",
                                   "--no-telemetry",
                                   "--file-prefix=sluice-fuzz-" + std::to_string(getpid()),
                                   getenv("SLUICE_FUZZ_VERBOSE") ? "--log-level=lib.eal:info"
                                                                 : "--log-level=*:error"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    fprintf(stderr, "fuzz: rte_eal_init failed\n");
    abort();
  }
  quiet_logs();
  // LeakSanitizer does not scan memory that DPDK mapped itself (mempools,
  // rte_malloc, rte_hash tables): heap objects that only DPDK memory points
  // to (FDB entries in the bridge's rte_hash, …) would be reported as
  // leaked. Its memseg lists are roots, scanned like globals.
  rte_memseg_list_walk(
      [](const rte_memseg_list* msl, void*) {
        __lsan_register_root_region(msl->base_va, msl->len);
        return 0;
      },
      nullptr);
  static std::string run_dir = "/var/run/dpdk/sluice-fuzz-" + std::to_string(getpid());
  atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(run_dir, ec);
  });
}

std::unique_ptr<Dataplane> build_rx_dataplane() {
  auto dp = std::make_unique<Dataplane>();
  try {
    dp->topo = config::load_file(topo_path("rx.yaml"));
    pmd::setup(*dp);
    dp->build();
  } catch (const std::exception& e) {
    fprintf(stderr, "fuzz: cannot build topo/rx.yaml: %s\n", e.what());
    abort();
  }
  return dp;
}

}  // namespace sluice::fuzz
