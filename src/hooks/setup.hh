// The hooks feature's setup and control-thread API (src/hooks/setup.cc).
#pragma once

#include <string>
#include <vector>

#include "hooks/config.hh"
#include "sluice/hook.hh"

namespace sluice {
class Dataplane;
}

namespace sluice::hooks {

class Registry;

// Rule lists and plugins of dp.topo, then br_netfilter's arp/forward step on
// the bridges (bridge::br_netfilter_attach). Throws on errors.
void setup(Dataplane& dp);
// Builds and attaches the rule lists of cfg; returns "" or the error.
std::string load_rule_lists(Registry& reg, const std::vector<config::HookListCfg>& cfg);
// dlopen + sluice_plugin_init; returns "" or the error.
std::string load_plugin(Registry& reg, const std::string& path, const std::string& point,
                        int priority, const std::string& args = "");
// Calls each plugin's sluice_plugin_fini (shutdown, before the ports close).
void fini_plugins(Registry& reg);
sluice_host host_table(Registry& reg);
// Drops what control-socket queue consumers hold or left waiting (shutdown).
void queue_console_shutdown(Dataplane& dp);
// New rules for the existing lists (same names, points, priorities): all
// checked first, then swapped in under RCU. Returns "" or the error.
std::string reload(Dataplane& dp, const std::vector<config::HookListCfg>& cfg);
// Feature::reload: lists added, removed, moved (another point or priority:
// a new entry) and changed (new rules, same entry and counters).
std::string reload_feature(Dataplane& dp, const config::Topology& next, bool apply);

}  // namespace sluice::hooks
