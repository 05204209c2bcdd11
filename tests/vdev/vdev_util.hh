// Helpers shared by the vdev suites (test_vdev.cc, test_hotplug.cc).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "config/topology.hh"

namespace sluice::test {

// A port of the topology on a vdev, with small rings.
inline config::Port vdev_port(const std::string& name, const std::string& devargs,
                              const char* mac) {
  config::Port p;
  p.name = name;
  p.device = devargs;
  p.mac = mac;
  p.rx_desc = 256;
  p.tx_desc = 256;
  return p;
}

// Polls cond every 10 ms for up to ms milliseconds; its last answer.
inline bool wait_for(const std::function<bool()>& cond, int ms = 5000) {
  for (int i = 0; i < ms / 10; i++) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

}  // namespace sluice::test
