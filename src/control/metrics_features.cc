// The features' Prometheus families, read from the JSON of their `show`
// commands (the contract of CLI.md), so /metrics, `sluicectl --json` and
// telemetry report the same numbers from the same code. Rendered on the
// control thread, like the rest of the exposition (metrics.cc).
//
//   show bridge      sluice_bridge_fdb_entries{bridge}, sluice_bridge_<counter>_total{bridge},
//                    sluice_bridge_port_state{bridge,port,state}
//   show neigh       sluice_neigh_entries{dev,state}
//   show routes      sluice_routes{table,type}
//   show ip stats    sluice_ip_mib_total{dev,counter}   (Linux MIB names; "all" is left out)
//   show hooks       sluice_hook_{hits,drops,queued,stolen}_total{point,entry},
//                    sluice_hook_rule_hits_total{point,entry,rule}
//   show queues      sluice_hook_queue_{queued,answered,full}_total{queue}, _waiting{queue}
//   show captures    sluice_capture_{accepted,filtered,nombuf,ringfull,written}_total{id,dev}
//   show mirrors sluice_mirror_{hits,bytes,copies,copies_failed,sampled_out,skipped}_total{mirror},
//                    sluice_mirror_drops_total{mirror,reason}
// Bonds and LACP register their own families (src/bond/commands.cc).
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/command.hh"
#include "control/metrics.hh"

namespace sluice {
namespace {

using nlohmann::json;

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void family(const std::string& name, const char* type, const char* help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name,
              std::initializer_list<std::pair<const char*, std::string>> labels, const json& v) {
    if (!v.is_number() && !v.is_boolean()) return;
    out_ += name;
    char sep = '{';
    for (const auto& [k, val] : labels) {
      out_ += sep;
      out_ += k;
      out_ += "=\"" + metrics_label_escape(val) + "\"";
      sep = ',';
    }
    if (sep == ',') out_ += '}';
    out_ += ' ';
    if (v.is_boolean())
      out_ += v.get<bool>() ? "1" : "0";
    else
      out_ += v.dump();
    out_ += '\n';
  }

 private:
  std::string& out_;
};

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

json show(Dataplane& dp, std::vector<std::string> argv) {
  CmdResult r = CommandRegistry::instance().run(dp, argv);
  if (r.status != 0) return nullptr;  // the feature is not in this build or topology
  return std::move(r.json);
}

void bridges(Dataplane& dp, Writer& w) {
  json all = show(dp, {"show", "bridge"});
  if (!all.is_object() || all.empty()) return;
  w.family("sluice_bridge_fdb_entries", "gauge", "Entries in a bridge's forwarding database.");
  for (auto& [br, j] : all.items())
    w.sample("sluice_bridge_fdb_entries", {{"bridge", br}}, j["fdb_entries"]);
  std::map<std::string, std::vector<std::pair<std::string, json>>> by_counter;
  for (auto& [br, j] : all.items())
    if (j.contains("counters"))
      for (auto& [k, v] : j["counters"].items()) by_counter[k].emplace_back(br, v);
  for (auto& [k, rows] : by_counter) {
    std::string name = "sluice_bridge_" + k + "_total";
    w.family(name, "counter", "Bridge counter (show bridge: counters).");
    for (auto& [br, v] : rows) w.sample(name, {{"bridge", br}}, v);
  }
  w.family("sluice_bridge_port_state", "gauge",
           "Bridge port STP state (1 for the port's current state).");
  for (auto& [br, j] : all.items())
    if (j.contains("ports"))
      for (auto& [port, p] : j["ports"].items())
        w.sample("sluice_bridge_port_state",
                 {{"bridge", br}, {"port", port}, {"state", str(p, "state")}}, 1);
}

void neighbours(Dataplane& dp, Writer& w) {
  json all = show(dp, {"show", "neigh"});
  if (!all.is_array()) return;
  std::map<std::pair<std::string, std::string>, unsigned> n;
  for (auto& e : all) n[{str(e, "dev"), str(e, "state")}]++;
  w.family("sluice_neigh_entries", "gauge", "Neighbour (ARP/ND) entries by device and NUD state.");
  for (auto& [k, v] : n)
    w.sample("sluice_neigh_entries", {{"dev", k.first}, {"state", k.second}}, v);
}

void routes(Dataplane& dp, Writer& w) {
  json all = show(dp, {"show", "routes"});
  if (!all.is_array()) return;
  std::map<std::pair<std::string, std::string>, unsigned> n;
  for (auto& e : all) n[{str(e, "table"), str(e, "type")}]++;
  w.family("sluice_routes", "gauge", "Routes by table and type.");
  for (auto& [k, v] : n) w.sample("sluice_routes", {{"table", k.first}, {"type", k.second}}, v);
}

void ip_stats(Dataplane& dp, Writer& w) {
  json all = show(dp, {"show", "ip", "stats"});
  if (!all.is_object() || all.empty()) return;
  w.family("sluice_ip_mib_total", "counter",
           "IP, ICMP and TCP MIB counters by device (Linux names).");
  for (auto& [dev, mib] : all.items()) {
    if (dev == "all" || !mib.is_object()) continue;  // the sum of the others
    for (auto& [k, v] : mib.items())
      w.sample("sluice_ip_mib_total", {{"dev", dev}, {"counter", k}}, v);
  }
}

void hooks(Dataplane& dp, Writer& w) {
  json all = show(dp, {"show", "hooks"});
  if (!all.is_object() || all.empty()) return;
  for (const char* k : {"hits", "drops", "queued", "stolen"}) {
    std::string name = std::string("sluice_hook_") + k + "_total";
    w.family(name, "counter", "Packets seen by a hook entry, and its verdicts (show hooks).");
    for (auto& [point, entries] : all.items())
      for (auto& e : entries) w.sample(name, {{"point", point}, {"entry", str(e, "name")}}, e[k]);
  }
  w.family("sluice_hook_rule_hits_total", "counter",
           "Hits of each rule of a rule-list hook entry.");
  for (auto& [point, entries] : all.items())
    for (auto& e : entries)
      if (e.contains("rules"))
        for (size_t i = 0; i < e["rules"].size(); i++)
          w.sample("sluice_hook_rule_hits_total",
                   {{"point", point}, {"entry", str(e, "name")}, {"rule", std::to_string(i)}},
                   e["rules"][i]["hits"]);
}

void queues(Dataplane& dp, Writer& w) {
  json all = show(dp, {"show", "queues"});
  if (!all.is_array() || all.empty()) return;
  for (const char* k : {"queued", "answered", "full"}) {
    std::string name = std::string("sluice_hook_queue_") + k + "_total";
    w.family(name, "counter", "Hook queue counters (show queues).");
    for (auto& q : all) w.sample(name, {{"queue", str(q, "queue")}}, q[k]);
  }
  w.family("sluice_hook_queue_waiting", "gauge", "Packets waiting for a hook queue's verdict.");
  for (auto& q : all)
    w.sample("sluice_hook_queue_waiting", {{"queue", str(q, "queue")}}, q["waiting"]);
}

void captures(Dataplane& dp, Writer& w) {
  json all = show(dp, {"show", "captures"});
  if (!all.is_array() || all.empty()) return;
  for (const char* k : {"accepted", "filtered", "nombuf", "ringfull", "written"}) {
    std::string name = std::string("sluice_capture_") + k + "_total";
    w.family(name, "counter", "Capture counters (show captures).");
    for (auto& c : all) w.sample(name, {{"id", str(c, "id")}, {"dev", str(c, "dev")}}, c[k]);
  }
}

void mirrors(Dataplane& dp, Writer& w) {
  json all = show(dp, {"show", "mirrors"});
  if (!all.is_object() || all.empty()) return;
  for (const char* k : {"hits", "bytes", "copies", "copies_failed", "sampled_out", "skipped"}) {
    std::string name = std::string("sluice_mirror_") + k + "_total";
    w.family(name, "counter", "Mirror counters (show mirrors).");
    for (auto& [m, j] : all.items()) w.sample(name, {{"mirror", m}}, j[k]);
  }
  w.family("sluice_mirror_drops_total", "counter", "Packets a mirror action dropped, by reason.");
  for (auto& [m, j] : all.items())
    if (j.contains("drops") && j["drops"].is_object())
      for (auto& [reason, v] : j["drops"].items())
        w.sample("sluice_mirror_drops_total", {{"mirror", m}, {"reason", reason}}, v);
}

}  // namespace

std::string metrics_label_escape(const std::string& v) {
  std::string o;
  o.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      o += '\\';
      o += c;
    } else if (c == '\n') {
      o += "\\n";
    } else {
      o += c;
    }
  }
  return o;
}

void feature_metrics(Dataplane& dp, std::string& out) {
  Writer w(out);
  bridges(dp, w);
  neighbours(dp, w);
  routes(dp, w);
  ip_stats(dp, w);
  hooks(dp, w);
  queues(dp, w);
  captures(dp, w);
  mirrors(dp, w);
}

}  // namespace sluice
