// The core's commands: devices, ports, counters, drops, runtime, link state.
//
//   show ports                  ports: driver, devargs, link, queues, pollers
//   show port stats [DEV|all]   Linux net_device counters of every device (or one)
//   show port xstats DEV        the PMD's extended statistics of a port
//   show devices                every device: kind, state, MAC, MTU, master, rx_handler
//   show drops                  non-zero drop counters by device and reason
//   show runtime                per stage: calls, packets, cycles (summed, and per worker)
//   clear stats                 zero every counter (and the ports' ethdev stats)
//   set link DEV up|down        admin state (ip link set DEV up|down)
//   version                     sluice and DPDK versions
//
// JSON shapes: docs/CLI.md (never rename a field; add freely).
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_version.h>
#include <nlohmann/json.hpp>
#include <sluice/version.hh>

#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/format.hh"

namespace sluice {
namespace {

using nlohmann::json;

CmdResult usage_error(const char* usage) {
  return CmdResult::error(std::string("usage: ") + usage);
}

CmdResult no_such_device(const std::string& name) {
  return CmdResult::error("no such device '" + name + "'");
}

std::string dev_name(const Dataplane& dp, uint16_t index) {
  Device* d = dp.net.dev(index);
  return d != nullptr ? d->name : std::string();
}

json dev_name_or_null(const Dataplane& dp, uint16_t index) {
  if (index == kNoDev) return nullptr;
  Device* d = dp.net.dev(index);
  return d != nullptr ? json(d->name) : json(nullptr);
}

std::string state_text(const Device& d) {
  if (!d.admin_up.load(std::memory_order_relaxed)) return "down";
  return d.oper_up.load(std::memory_order_relaxed) ? "up" : "no-carrier";
}

std::string num(uint64_t v) {
  return std::to_string(v);
}

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// ---- show port stats [DEV|all] -------------------------------------------------------------

CmdResult show_port_stats(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.size() > 1) return usage_error("show port stats [DEV|all]");
  std::vector<Device*> devs;
  if (args.empty() || args[0] == "all") {
    devs = dp.net.devices();
  } else {
    Device* d = dp.net.find(args[0]);
    if (d == nullptr) return no_such_device(args[0]);
    devs.push_back(d);
  }
  CmdResult r;
  r.json = json::object();
  TextTable t({{"DEVICE"},
               {"RX-PACKETS", TextTable::right},
               {"RX-BYTES", TextTable::right},
               {"RX-DROPPED", TextTable::right},
               {"RX-NOHANDLER", TextTable::right},
               {"RX-OTHERHOST", TextTable::right},
               {"MULTICAST", TextTable::right},
               {"TX-PACKETS", TextTable::right},
               {"TX-BYTES", TextTable::right},
               {"TX-DROPPED", TextTable::right}});
  for (Device* d : devs) {
    const DevCounters c = dp.counters(d->index);
    r.json[d->name] = {
        {"rx_packets", c.rx_packets},
        {"rx_bytes", c.rx_bytes},
        {"rx_dropped", c.rx_dropped},
        {"rx_nohandler", c.rx_nohandler},
        {"rx_otherhost_dropped", c.rx_otherhost_dropped},
        {"tx_packets", c.tx_packets},
        {"tx_bytes", c.tx_bytes},
        {"tx_dropped", c.tx_dropped},
        {"multicast", c.multicast},
    };
    t.add({d->name, num(c.rx_packets), num(c.rx_bytes), num(c.rx_dropped), num(c.rx_nohandler),
           num(c.rx_otherhost_dropped), num(c.multicast), num(c.tx_packets), num(c.tx_bytes),
           num(c.tx_dropped)});
  }
  r.text = t.str();
  return r;
}

// ---- show port xstats DEV --------------------------------------------------------------------

CmdResult show_port_xstats(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.size() != 1) return usage_error("show port xstats DEV");
  Device* d = dp.net.find(args[0]);
  if (d == nullptr) return no_such_device(args[0]);
  if (d->kind != DevKind::port || !rte_eth_dev_is_valid_port(d->port_id))
    return CmdResult::error("'" + d->name + "' is not a port (" + dev_kind_name(d->kind) +
                            "); xstats exist for ports only");
  const uint16_t pid = d->port_id;

  auto failed = [&](int rc) {
    return CmdResult::error("xstats of '" + d->name + "': " + rte_strerror(-rc));
  };
  std::vector<rte_eth_xstat_name> names;
  std::vector<rte_eth_xstat> values;
  int n = 0;
  for (int attempt = 0;; attempt++) {  // the count may change between the calls
    const int want = rte_eth_xstats_get_names(pid, nullptr, 0);
    if (want < 0) return failed(want);
    names.resize(static_cast<size_t>(want));
    values.resize(static_cast<size_t>(want));
    const int got_names = rte_eth_xstats_get_names(pid, names.data(), static_cast<unsigned>(want));
    if (got_names < 0) return failed(got_names);
    n = rte_eth_xstats_get(pid, values.data(), static_cast<unsigned>(want));
    if (n < 0) return failed(n);
    if (got_names <= want && n <= want) {
      names.resize(static_cast<size_t>(got_names));
      break;
    }
    if (attempt == 2)
      return CmdResult::error("xstats of '" + d->name + "': the driver keeps changing their count");
  }

  CmdResult r;
  r.json = json::object();
  TextTable t({{"NAME"}, {"VALUE", TextTable::right}});
  for (int i = 0; i < n; i++) {
    const rte_eth_xstat& x = values[static_cast<size_t>(i)];
    if (x.id >= names.size()) continue;
    const std::string name = names[x.id].name;
    r.json[name] = x.value;
    t.add({name, num(x.value)});
  }
  r.text = t.str();
  return r;
}

// ---- show devices ----------------------------------------------------------------------------

const char* vlan_proto_name(uint16_t proto) {
  return proto == 0x88a8 ? "802.1ad" : "802.1Q";
}

CmdResult show_devices(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return usage_error("show devices");
  CmdResult r;
  r.json = json::object();
  TextTable t({{"INDEX", TextTable::right},
               {"NAME"},
               {"KIND"},
               {"STATE"},
               {"MAC"},
               {"MTU", TextTable::right},
               {"MASTER"},
               {"RX-HANDLER"},
               {"LINK / INFO"}});
  for (Device* d : dp.net.devices()) {
    const uint16_t master = d->master.load(std::memory_order_relaxed);
    const bool has_handler = d->rx_handler.load(std::memory_order_acquire) != nullptr;
    const char* owner = d->rx_handler_owner != nullptr ? d->rx_handler_owner : "?";
    json j = {
        {"index", d->index},
        {"kind", dev_kind_name(d->kind)},
        {"admin_up", d->admin_up.load(std::memory_order_relaxed)},
        {"oper_up", d->oper_up.load(std::memory_order_relaxed)},
        {"mac", mac_to_string(d->mac)},
        {"mtu", d->mtu},
        {"promiscuous", d->promiscuous},
        {"master", dev_name_or_null(dp, master)},
        {"rx_handler", has_handler ? json(owner) : json(nullptr)},
        {"link", nullptr},
    };
    std::string link;
    if (d->kind == DevKind::vlan) {
      j["link"] = dev_name_or_null(dp, d->link);
      j["vlan_id"] = d->vlan_id;
      j["vlan_protocol"] = vlan_proto_name(d->vlan_proto);
      link = dev_name(dp, d->link) + " (" + vlan_proto_name(d->vlan_proto) + " " +
             std::to_string(d->vlan_id) + ")";
    }
    if (d->kind == DevKind::port) j["port_id"] = d->port_id;
    Dataplane::DeviceInfo info;  // what features say about it (a bond member's state)
    for (auto& fn : dp.device_info_fns) fn(*d, info);
    for (auto& [k, v] : info) {
      j[k] = v;
      if (!link.empty()) link += " ";
      link += k + "=" + v;
    }
    r.json[d->name] = std::move(j);
    t.add({num(d->index), d->name, dev_kind_name(d->kind), state_text(*d), mac_to_string(d->mac),
           num(d->mtu), master == kNoDev ? "-" : dev_name(dp, master), has_handler ? owner : "-",
           link.empty() ? "-" : link});
  }
  r.text = t.str();
  return r;
}

// ---- show ports ------------------------------------------------------------------------------

CmdResult show_ports(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return usage_error("show ports");
  CmdResult r;
  r.json = json::object();
  for (const PortInfo& p : dp.ports) {
    Device* d = dp.net.dev(p.dev);
    const std::string name = d != nullptr ? d->name : "port" + std::to_string(p.port_id);
    json pollers = json::array();
    std::string poller_text;
    for (auto& [worker, queue] : p.pollers) {
      pollers.push_back({{"worker", worker}, {"queue", queue}});
      poller_text += (poller_text.empty() ? "" : ", ") + std::string("worker ") +
                     std::to_string(worker) + " queue " + std::to_string(queue);
    }
    const std::string mac = d != nullptr ? mac_to_string(d->mac) : "";
    const unsigned mtu = d != nullptr ? d->mtu : 0;
    const bool promisc = d != nullptr && d->promiscuous;
    r.json[name] = {
        {"port_id", p.port_id},
        {"device", p.devargs},
        {"driver", p.driver},
        {"link_up", p.link_up},
        {"speed_mbps", p.speed_mbps},
        {"duplex", p.full_duplex ? "full" : "half"},
        {"rx_queues", p.rx_queues},
        {"tx_queues", p.tx_queues},
        {"socket", p.socket},
        {"mac", mac},
        {"mtu", mtu},
        {"promiscuous", promisc},
        {"pollers", std::move(pollers)},
        {"link_changes", p.link_changes},
    };
    std::string& o = r.text;
    o += name + "  port " + std::to_string(p.port_id) + "  " + p.driver + "  " + p.devargs + "\n";
    o += "  link " + std::string(p.link_up ? "up" : "down");
    if (p.link_up) {
      o += p.speed_mbps != 0 ? ", " + std::to_string(p.speed_mbps) + " Mb/s" : ", speed unknown";
      o += p.full_duplex ? ", full duplex" : ", half duplex";
    }
    o += ", " + std::to_string(p.link_changes) + " link change(s)\n";
    o += "  mac " + mac + "  mtu " + std::to_string(mtu) + "  promiscuous " +
         (promisc ? "on" : "off") + "\n";
    o += "  rx queues " + std::to_string(p.rx_queues) + "  tx queues " +
         std::to_string(p.tx_queues) + "  socket " + std::to_string(p.socket) + "\n";
    o += "  pollers: " + (poller_text.empty() ? std::string("none") : poller_text) + "\n";
  }
  if (dp.ports.empty()) r.text = "no ports\n";
  return r;
}

// ---- show drops ------------------------------------------------------------------------------

CmdResult show_drops(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return usage_error("show drops");
  CmdResult r;
  r.json = json::object();
  TextTable t({{"DEVICE"}, {"REASON"}, {"COUNT", TextTable::right}, {"DESCRIPTION"}});
  uint64_t total = 0;
  for (Device* d : dp.net.devices()) {
    const auto drops = dp.drops(d->index);
    json j = json::object();
    for (unsigned i = 0; i < kNumDropReasons; i++) {
      if (drops[i] == 0) continue;
      const auto reason = static_cast<DropReason>(i);
      j[drop_reason_name(reason)] = drops[i];
      t.add({d->name, drop_reason_name(reason), num(drops[i]), drop_reason_text(reason)});
      total += drops[i];
    }
    if (!j.empty()) r.json[d->name] = std::move(j);
  }
  if (t.rows() == 0) {
    r.text = "no drops\n";
  } else {
    r.text = t.str() + "total: " + num(total) + " dropped\n";
  }
  return r;
}

// ---- show runtime / clear runtime ------------------------------------------------------------

using Runtime = std::array<StageStats, kMaxStages>;

// Stages that ran, in registration order (the order a packet meets them).
std::string runtime_table(const Runtime& rt, const std::vector<StageId>& order) {
  TextTable t({{"STAGE"},
               {"CALLS", TextTable::right},
               {"PACKETS", TextTable::right},
               {"PKTS/CALL", TextTable::right},
               {"CYCLES", TextTable::right},
               {"CYCLES/PKT", TextTable::right}});
  uint64_t calls = 0, cycles = 0, rx = rt[stage::port_rx].packets;
  for (StageId s : order) {
    const StageStats& st = rt[s];
    if (st.calls == 0) continue;
    calls += st.calls;
    cycles += st.cycles;
    t.add({stage_name(static_cast<StageId>(s)), num(st.calls), num(st.packets),
           fixed2(static_cast<double>(st.packets) / st.calls), num(st.cycles),
           st.packets ? fixed2(static_cast<double>(st.cycles) / st.packets) : "-"});
  }
  t.add({"(all stages, per packet received)", num(calls), num(rx), "", num(cycles),
         rx ? fixed2(static_cast<double>(cycles) / rx) : "-"});
  return t.str(2);
}

CmdResult show_runtime(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return usage_error("show runtime");
  const std::vector<StageId> order = stages_in_order();
  std::string per_worker;
  std::vector<Runtime> snap;
  for (auto& w : dp.workers) {
    Runtime rt;  // a racy snapshot; the counters only grow (or are cleared)
    std::copy(std::begin(w->runtime.stats), std::end(w->runtime.stats), rt.begin());
    snap.push_back(rt);
    per_worker += "worker " + std::to_string(w->id) + " (lcore " + std::to_string(w->lcore) +
                  "):\n" + runtime_table(rt, order);
  }
  // The totals honour `clear runtime` / `clear stats` (a baseline); the per-worker tables are raw.
  Runtime sum = dp.runtime();
  CmdResult r;
  r.json = json::array();
  for (StageId s : order) {
    const StageStats& st = sum[s];
    json workers = json::array();  // raw, like the text's per-worker tables
    for (size_t i = 0; i < dp.workers.size(); i++) {
      const StageStats& ws = snap[i][s];
      workers.push_back({{"worker", dp.workers[i]->id},
                         {"lcore", dp.workers[i]->lcore},
                         {"calls", ws.calls},
                         {"packets", ws.packets},
                         {"cycles", ws.cycles}});
    }
    r.json.push_back({
        {"stage", stage_name(static_cast<StageId>(s))},
        {"calls", st.calls},
        {"packets", st.packets},
        {"cycles", st.cycles},
        {"packets_per_call", st.calls ? static_cast<double>(st.packets) / st.calls : 0.0},
        {"cycles_per_packet", st.packets ? static_cast<double>(st.cycles) / st.packets : 0.0},
        {"workers", std::move(workers)},
    });
  }
  const uint64_t hz = rte_get_tsc_hz();
  const double up_s =
      hz != 0 ? static_cast<double>(rte_rdtsc() - dp.start_tsc) / static_cast<double>(hz) : 0;
  r.text = "uptime " + fixed2(up_s) + " s, " + std::to_string(dp.workers.size()) +
           " worker(s), TSC " + std::to_string(hz / 1000000) +
           " MHz; cycles are each stage's own (exclusive of the stages it calls)\n";
  r.text += per_worker;
  if (dp.workers.size() != 1) r.text += "total (since clear):\n" + runtime_table(sum, order);
  return r;
}

CmdResult clear_runtime(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return usage_error("clear runtime");
  dp.clear_runtime();
  CmdResult r;
  r.text = "runtime counters cleared\n";
  r.json = {{"cleared", "runtime"}};
  return r;
}

// ---- clear stats / set link / version --------------------------------------------------------

CmdResult clear_stats(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return usage_error("clear stats");
  dp.clear_stats();
  for (const PortInfo& p : dp.ports) {
    if (!rte_eth_dev_is_valid_port(p.port_id)) continue;
    rte_eth_stats_reset(p.port_id);  // not every PMD supports both: best effort
    rte_eth_xstats_reset(p.port_id);
  }
  return {};
}

CmdResult set_link(Dataplane& dp, const std::vector<std::string>& args) {
  constexpr const char* kUsage = "set link DEV up|down";
  if (args.size() != 2 || (args[1] != "up" && args[1] != "down")) return usage_error(kUsage);
  Device* d = dp.net.find(args[0]);
  if (d == nullptr) return no_such_device(args[0]);
  const bool up = args[1] == "up";
  const bool ethdev = d->kind == DevKind::port && rte_eth_dev_is_valid_port(d->port_id);
  if (up) {
    // The NIC first, then the dataplane uses it.
    int rc = ethdev ? rte_eth_dev_set_link_up(d->port_id) : 0;
    if (rc < 0 && rc != -ENOTSUP)
      return CmdResult::error("set link " + d->name +
                              " up: rte_eth_dev_set_link_up: " + rte_strerror(-rc));
    d->admin_up.store(true, std::memory_order_release);
  } else {
    // The dataplane stops using it first, then the NIC; down stays down even if the NIC refuses.
    d->admin_up.store(false, std::memory_order_release);
    int rc = ethdev ? rte_eth_dev_set_link_down(d->port_id) : 0;
    if (rc < 0 && rc != -ENOTSUP)
      return CmdResult::error("set link " + d->name + " down: admin state is down, but " +
                              "rte_eth_dev_set_link_down failed: " + rte_strerror(-rc));
  }
  return {};
}

CmdResult version(Dataplane&, const std::vector<std::string>& args) {
  if (!args.empty()) return usage_error("version");
  CmdResult r;
  r.json = {{"version", SLUICE_VERSION}, {"dpdk", rte_version()}, {"tsc_hz", rte_get_tsc_hz()}};
  r.text = std::string("sluice ") + SLUICE_VERSION + "\n" + rte_version() + "\n";
  return r;
}

// ---- registration ----------------------------------------------------------------------------

const CommandRegistrar kCommands{
    {{"show", "ports"}, "show ports", "ports: driver, device, link, queues, pollers", show_ports},
    {{"show", "port", "stats"},
     "show port stats [DEV|all]",
     "rx/tx/drop counters of every device (or of DEV)",
     show_port_stats},
    {{"show", "port", "xstats"},
     "show port xstats DEV",
     "the driver's extended statistics of port DEV",
     show_port_xstats},
    {{"show", "devices"},
     "show devices",
     "every device: kind, state, MAC, MTU, master, rx_handler",
     show_devices},
    {{"show", "drops"}, "show drops", "drop counters by device and reason", show_drops},
    {{"show", "runtime"},
     "show runtime",
     "per stage: calls, packets, cycles per packet",
     show_runtime},
    {{"clear", "runtime"}, "clear runtime", "zero the per-stage counters", clear_runtime},
    {{"clear", "stats"}, "clear stats", "zero every counter", clear_stats},
    {{"set", "link"}, "set link DEV up|down", "set the admin state of DEV", set_link},
    {{"version"}, "version", "sluice and DPDK versions", version},
};

}  // namespace
}  // namespace sluice
