#include "support/eal_env.hh"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_mbuf.h>

#include "core/meta.hh"

namespace sluice::test {
namespace {
rte_mempool* g_pool = nullptr;

// SLUICE_TEST_LCORES: the vdev suite runs a real worker on lcore 1.
std::string lcores() {
  const char* e = getenv("SLUICE_TEST_LCORES");
  return e ? e : "0";
}

class EalEnv : public ::testing::Environment {
 public:
  void SetUp() override {
    std::string prefix = "sluice-test-" + std::to_string(getpid());
    std::vector<std::string> args = {"sluice-test", "--no-huge", "-m",
                                     "512",         "--no-pci",  "--file-prefix=" + prefix,
                                     "-l",          lcores(),    "--log-level=lib.eal:error",
                                     "--no-shconf"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ASSERT_GE(rte_eal_init(static_cast<int>(argv.size()), argv.data()), 0) << "rte_eal_init failed";
    g_pool = rte_pktmbuf_pool_create("test_pool", 8191, 256, kMbufPrivSize,
                                     RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    ASSERT_NE(g_pool, nullptr);
  }
  void TearDown() override {
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/sluice-test-" + std::to_string(getpid()), ec);
  }
};

const auto* env = ::testing::AddGlobalTestEnvironment(new EalEnv);
}  // namespace

rte_mempool* pool() {
  return g_pool;
}

}  // namespace sluice::test
