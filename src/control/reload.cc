#include "control/reload.hh"

#include <chrono>
#include <memory>

#include <spdlog/spdlog.h>

#include "config/topology.hh"
#include "control/command.hh"
#include "control/reload_ports.hh"
#include "core/dataplane.hh"
#include "core/feature.hh"

namespace sluice {

namespace {

// Topologies a reload replaced. Features may keep pointers into their
// sections (names, rule texts): the old objects stay where they are.
struct Retired {
  explicit Retired(Dataplane&) {}
  std::vector<std::unique_ptr<config::Topology>> topos;
};

bool same_vlan(const config::Vlan& a, const config::Vlan& b) {
  return a.name == b.name && a.link == b.link && a.id == b.id && a.protocol == b.protocol;
}

using config::where;

const config::Vlan* find_vlan(const config::Topology& t, const std::string& name) {
  for (const auto& v : t.vlans)
    if (v.name == name) return &v;
  return nullptr;
}

// The core's VLANs: new ones on devices that exist are added, removed ones
// are unregistered (after the features let go of them: a bridge port, an
// address); changing one in place needs a restart (its device's index and
// counters stay).
std::string check_vlans(Dataplane& dp, const config::Topology& next) {
  for (const auto& old : dp.topo.vlans) {
    const config::Vlan* now = find_vlan(next, old.name);
    if (now == nullptr) {
      for (const auto& v : next.vlans)
        if (find_vlan(dp.topo, v.name) == nullptr && v.link == old.link && v.id == old.id &&
            v.protocol == old.protocol)
          return where(next.file, v.mark) + "vlan '" + v.name + "' takes the VLAN id of '" +
                 old.name + "', which this reload removes: remove it in one reload, add '" +
                 v.name + "' in the next";
      continue;
    }
    if (!same_vlan(old, *now))
      return where(next.file, now->mark) + "vlan '" + old.name +
             "' changed: changing a VLAN device needs a restart of sluiced";
  }
  for (const auto& v : next.vlans) {
    if (dp.net.find(v.name) != nullptr) continue;
    // On a running device, or on one this reload makes (a VLAN, a bond, a bridge).
    if (dp.net.find(v.link) == nullptr && next.devices.count(v.link) == 0)
      return where(next.file, v.mark) + "vlan '" + v.name + "': its link '" + v.link +
             "' does not run yet (a reload adds VLANs on existing or new devices)";
  }
  return "";
}

}  // namespace

ReloadResult reload_topology(Dataplane& dp, const std::string& file_arg) {
  ReloadResult res;
  const std::string file = file_arg.empty() ? dp.topo.file : file_arg;
  config::Topology next;
  try {
    next = config::load_file(file);
  } catch (const std::exception& e) {
    res.error = e.what();
    return res;
  }

  // What changed, and whether its owner can take it: nothing changes yet.
  for (const char* s : {"eal", "control", "logging"}) {
    if (!dp.topo.section_differs(next, s)) continue;
    res.error =
        file + ": section '" + s + "' changed: it needs a restart of sluiced (nothing was changed)";
    return res;
  }
  // Ports added are probed and started now, so that the checks below find
  // them; every refusal from here on closes them again (cancel_ports).
  PortPlan ports;
  if (dp.topo.section_differs(next, "ports")) {
    res.changed.emplace_back("ports");
    std::string e = check_ports(dp, next, &ports);
    if (e.empty()) e = prepare_ports(dp, ports);
    if (!e.empty()) {
      res.error = e;
      return res;
    }
  }
  auto refuse = [&](std::string e) {
    cancel_ports(dp, ports);
    res.error = std::move(e);
    return res;
  };
  const bool vlans = dp.topo.section_differs(next, "vlans");
  if (vlans) {
    res.changed.emplace_back("vlans");
    if (std::string e = check_vlans(dp, next); !e.empty()) return refuse(e);
  }
  std::vector<const Feature*> todo;
  for (const Feature* f : features()) {
    std::string names;  // the feature's changed sections, 'a', 'b'
    for (const ConfigSection& s : f->sections)
      if (dp.topo.section_differs(next, std::string(s.name))) {
        res.changed.emplace_back(s.name);
        names += (names.empty() ? "'" : ", '") + std::string(s.name) + "'";
      }
    if (names.empty()) continue;
    if (f->reload == nullptr)
      return refuse(
          file + ": " + names + " changed: " + std::string(f->name) +
          " cannot change while running yet; it needs a restart of sluiced (nothing was changed)");
    if (std::string e = f->reload(dp, next, false); !e.empty()) return refuse(e);
    todo.push_back(f);
  }

  // Apply, with the workers paused at the end of their loop.
  const auto t0 = std::chrono::steady_clock::now();
  if (!dp.pause_workers())
    return refuse("the workers did not pause within 1 s; nothing was changed");
  std::string apply_error;
  const std::vector<config::Vlan> old_vlans = dp.topo.vlans;
  try {
    attach_ports(dp, ports);  // the new ports' queues polled from the resume on
    if (vlans) {
      dp.topo.vlans = next.vlans;  // add_vlans() reads them
      dp.add_vlans();
    }
    for (const Feature* f : todo)
      if (std::string e = f->reload(dp, next, true); !e.empty() && apply_error.empty())
        apply_error = std::string(f->name) + ": " + e;
    if (vlans) {
      dp.add_vlans();  // those on a bond or bridge this reload made
      for (const auto& v : next.vlans)
        if (dp.net.find(v.name) == nullptr && apply_error.empty())
          apply_error = "vlan '" + v.name + "': its link '" + v.link + "' was not made";
      // Removed VLANs go last, upper ones before their lower ones (reverse
      // file order): every feature has let go of them by now.
      for (auto it = old_vlans.rbegin(); it != old_vlans.rend(); ++it) {
        if (find_vlan(next, it->name) != nullptr) continue;
        if (Device* d = dp.net.find(it->name)) {
          dp.unregister_device(*d);
          spdlog::info("vlan {}: removed from {}", it->name, it->link);
        }
      }
    }
  } catch (const std::exception& e) {
    apply_error = e.what();
  }
  try {
    detach_ports(dp, ports);  // after the features let go of them
  } catch (const std::exception& e) {
    if (apply_error.empty()) apply_error = e.what();
  }
  auto& retired = dp.feature<Retired>();
  retired.topos.push_back(std::make_unique<config::Topology>(std::move(dp.topo)));
  dp.topo = next;
  dp.resume_workers();
  res.paused_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  close_removed_ports(dp, ports);  // the removed ports' ethdevs: nothing polls them any more
  if (!apply_error.empty()) {      // checked, yet a resource failed: said loudly, the rest applied
    res.error = file + ": applying the reload failed: " + apply_error;
    spdlog::error("reload: {}", res.error);
    return res;
  }
  res.ok = true;
  std::string list;
  for (auto& c : res.changed) list += (list.empty() ? "" : ", ") + c;
  spdlog::info("reload {}: {} (workers paused {} us)", file, list.empty() ? "no change" : list,
               res.paused_us);
  return res;
}

namespace {

CmdResult reload_cmd(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.size() > 1) return CmdResult::error("usage: reload [FILE]");
  ReloadResult r = reload_topology(dp, args.empty() ? "" : args[0]);
  if (!r.ok) return CmdResult::error(r.error);
  CmdResult out;
  out.json = {{"file", dp.topo.file}, {"changed", r.changed}, {"paused_us", r.paused_us}};
  std::string list;
  for (auto& c : r.changed) list += (list.empty() ? "" : ", ") + c;
  out.text = "reloaded " + dp.topo.file + ": " + (list.empty() ? "no change" : list) +
             " (workers paused " + std::to_string(r.paused_us) + " us)\n";
  return out;
}

const CommandRegistrar kReload({{"reload"},
                                "reload [FILE]",
                                "re-read the topology (default: the start file) and apply what "
                                "changed without stopping forwarding; a bad file changes nothing",
                                reload_cmd});

}  // namespace
}  // namespace sluice
