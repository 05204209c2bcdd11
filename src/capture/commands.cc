// CLI of captures (see capture/capture.hh):
//   capture start DEV|any [ingress|egress|both] [FILTER] file PATH [count N] [snaplen N]
//                 [seconds N]
//                              (FILTER: every word before `file`, a pcap-filter(7)
//                               expression; a bad one fails with libpcap's message)
//   capture stop [ID]          (no ID: every running capture)
//   show captures              (--json: [{"id", "dev", "direction", "filter", "file",
//                               "accepted", "filtered", "nombuf", "ringfull", "written",
//                               "count", "seconds", "snaplen", "running", "error",
//                               "filter_engine": "jit"|"rte_bpf"|"libpcap"|null}])
// PATH is opened by sluiced, so a relative path is relative to the daemon's
// working directory.
#include <charconv>
#include <string>
#include <vector>

#include "capture/capture.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/format.hh"

namespace sluice {
namespace {

bool parse_u64(const std::string& s, uint64_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

constexpr const char* kStartUsage =
    "capture start DEV|any [ingress|egress|both] [FILTER] file PATH [count N] [snaplen N] "
    "[seconds N]";

CmdResult capture_start(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.empty()) return CmdResult::error(std::string("usage: ") + kStartUsage);
  CaptureOptions opt;
  opt.dev = args[0];
  size_t i = 1;
  if (i < args.size()) {
    if (args[i] == "ingress") {
      opt.dir = Direction::ingress;
      i++;
    } else if (args[i] == "egress") {
      opt.dir = Direction::egress;
      i++;
    } else if (args[i] == "both") {
      opt.dir = Direction::both;
      i++;
    }
  }
  // Everything up to "file" is a filter expression.
  size_t f = i;
  while (f < args.size() && args[f] != "file") f++;
  for (size_t k = i; k < f; k++) opt.filter += (k == i ? "" : " ") + args[k];
  if (f + 1 >= args.size()) return CmdResult::error(std::string("usage: ") + kStartUsage);
  opt.path = args[f + 1];
  for (i = f + 2; i < args.size(); i += 2) {
    const std::string& key = args[i];
    if (key != "count" && key != "snaplen" && key != "seconds")
      return CmdResult::error("unexpected '" + key + "'; usage: " + kStartUsage);
    uint64_t v = 0;
    if (i + 1 >= args.size() || !parse_u64(args[i + 1], &v))
      return CmdResult::error(key + " needs a number");
    if (key == "count") {
      opt.count = v;
    } else if (key == "seconds") {
      opt.seconds = v;
    } else {
      if (v > UINT32_MAX) v = UINT32_MAX;
      opt.snaplen = static_cast<uint32_t>(v);
    }
  }
  std::string err;
  uint32_t id = dp.feature<CaptureManager>().start(opt, &err);
  if (id == 0) return CmdResult::error(err);
  CmdResult r;
  r.text = "capture " + std::to_string(id) + " started on " + opt.dev + " (" +
           direction_name(opt.dir) + (opt.filter.empty() ? "" : ", \"" + opt.filter + "\"") +
           "), writing " + opt.path + "\n";
  r.json = {{"id", id}};
  return r;
}

CmdResult capture_stop(Dataplane& dp, const std::vector<std::string>& args) {
  auto& mgr = dp.feature<CaptureManager>();
  CmdResult r;
  if (args.empty()) {
    unsigned n = mgr.stop_all();
    r.text = "stopped " + std::to_string(n) + (n == 1 ? " capture\n" : " captures\n");
    r.json = {{"stopped", n}};
    return r;
  }
  uint64_t id = 0;
  if (args.size() != 1 || !parse_u64(args[0], &id) || id == 0 || id > UINT32_MAX)
    return CmdResult::error("usage: capture stop [ID]");
  if (!mgr.stop(static_cast<uint32_t>(id)))
    return CmdResult::error("no running capture " + args[0]);
  r.text = "capture " + args[0] + " stopped\n";
  r.json = {{"stopped", 1}};
  return r;
}

CmdResult show_captures(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return CmdResult::error("usage: show captures");
  CmdResult r;
  r.json = nlohmann::json::array();
  TextTable t({{"ID", TextTable::right},
               {"DEV"},
               {"DIR"},
               {"FILTER"},
               {"FILE"},
               {"ACCEPTED", TextTable::right},
               {"FILTERED", TextTable::right},
               {"NOMBUF", TextTable::right},
               {"RINGFULL", TextTable::right},
               {"WRITTEN", TextTable::right},
               {"COUNT", TextTable::right},
               {"STATE"}});
  CaptureManager* mgr = dp.find_feature<CaptureManager>();
  std::vector<CaptureInfo> caps = mgr ? mgr->list() : std::vector<CaptureInfo>{};
  for (const CaptureInfo& c : caps) {
    nlohmann::json j = {{"id", c.id},
                        {"dev", c.dev},
                        {"direction", direction_name(c.dir)},
                        {"filter", c.filter},
                        {"file", c.file},
                        {"accepted", c.accepted},
                        {"filtered", c.filtered},
                        {"nombuf", c.nombuf},
                        {"ringfull", c.ringfull},
                        {"written", c.written},
                        {"count", c.count},
                        {"seconds", c.seconds},
                        {"snaplen", c.snaplen},
                        {"running", c.running}};
    j["filter_engine"] =
        c.filter_engine.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.filter_engine);
    j["error"] = c.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.error);
    r.json.push_back(std::move(j));
    std::string state = c.running ? "running" : "finished";
    if (!c.error.empty()) state = "error: " + c.error;
    t.add({std::to_string(c.id), c.dev, direction_name(c.dir), c.filter.empty() ? "-" : c.filter,
           c.file, std::to_string(c.accepted), std::to_string(c.filtered), std::to_string(c.nombuf),
           std::to_string(c.ringfull), std::to_string(c.written),
           c.count != 0 ? std::to_string(c.count) : "-", state});
  }
  r.text = caps.empty() ? "no captures\n" : t.str();
  return r;
}

const CommandRegistrar reg_start({{"capture", "start"},
                                  kStartUsage,
                                  "write a device's packets to a pcapng file (like tcpdump -w)",
                                  capture_start});
const CommandRegistrar reg_stop(
    {{"capture", "stop"}, "capture stop [ID]", "stop one capture, or all of them", capture_stop});
const CommandRegistrar reg_show({{"show", "captures"},
                                 "show captures",
                                 "running and finished captures with their counters",
                                 show_captures});

}  // namespace
}  // namespace sluice
