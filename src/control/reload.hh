// Live reload of the whole topology: `reload [FILE]` and SIGHUP (re-reading
// the start file). The file is loaded and checked exactly as at start (a bad
// one changes nothing and gives the same FILE:LINE:COL error); then every
// section that changed is offered to its owner (the core for eal, ports,
// vlans, control, logging; a feature for its own sections, Feature::reload)
// and, only when every owner can take it, the workers are paused at the end
// of their poll loop (Dataplane::pause_workers, a few hundred microseconds),
// the owners apply it in place, dp.topo becomes the new topology and the
// workers go on. Devices, tables and state that did not change stay as they
// are (FDB, neighbours, LACP, STP, captures, counters).
//
// What can change (docs/operations.md, "Reload"): ports added and removed
// (src/control/reload_ports.hh); VLANs added; bridge ports added and removed; addresses added,
// routes and static neighbours added and removed; hook lists added, removed and changed. The rest
// is refused with the reason and needs a restart (eal, control, logging, changed ports, bonds, …).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

class Dataplane;

struct ReloadResult {
  bool ok = false;
  std::string error;                 // FILE:LINE:COL: … or FILE: section '…' …
  std::vector<std::string> changed;  // the sections that changed (applied when ok)
  uint64_t paused_us = 0;            // how long the workers were paused
};

// Control thread. file "" = the file sluiced started with (dp.topo.file).
ReloadResult reload_topology(Dataplane& dp, const std::string& file);

}  // namespace sluice
