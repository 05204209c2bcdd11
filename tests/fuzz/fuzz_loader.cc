// fuzz_loader: arbitrary bytes as a topology file (config::load_string, the
// parser sluiced --check and sluiced run: yaml-cpp, every feature's section
// and key tables, the cross-checks). The contract (docs/config.md): a bad
// file is a ConfigError "FILE:LINE:COL: message"; any other exception, a
// crash or a sanitizer report is a finding. No EAL: loading needs none.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "config/topology.hh"
#include "fuzz/fuzz_eal.hh"

using namespace sluice;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    config::Topology t = config::load_string(text, "fuzz.yaml");
    (void)t;
  } catch (const config::ConfigError& e) {
    const char* w = e.what();
    if (std::strncmp(w, "fuzz.yaml", 9) != 0) {
      fprintf(stderr, "fuzz_loader: a ConfigError without the file name: %s\n", w);
      abort();
    }
  } catch (const std::exception& e) {
    fprintf(stderr, "fuzz_loader: not a ConfigError: %s\n", e.what());
    abort();
  }
  return 0;
}
