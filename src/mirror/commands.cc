// CLI of mirrors (see mirror/mirror.hh):
//   show mirrors [NAME]   per mirror: source, direction, action, filter,
//                         destination, sample, snaplen and the counters
//   --json: {"m0": {"source", "direction", "action", "filter", "to", "sample",
//            "snaplen", "hits", "bytes", "copies", "copies_failed", "sampled_out",
//            "skipped", "drops": {REASON: N}, "written" (pcapng),
//            "filter_engine": "jit"|"rte_bpf"|"libpcap"|null}}
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "capture/capture.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/drop_reason.hh"
#include "mirror/mirror.hh"

namespace sluice::mirror {
namespace {

std::string destination(const config::Mirror& c) {
  switch (c.to) {
    case config::MirrorTarget::dev:
      return c.dev + (c.at_ingress ? " ingress" : " egress");
    case config::MirrorTarget::vxlan:
      return "vxlan " + c.remote + " vni " + std::to_string(c.vni) + " port " +
             std::to_string(c.dst_port) + " via " + c.via;
    case config::MirrorTarget::gre:
      return "gre " + c.remote + (c.key ? " key " + std::to_string(*c.key) : "") + " via " + c.via;
    case config::MirrorTarget::erspan:
      return "erspan " + c.remote + " session " + std::to_string(c.session) + " via " + c.via;
    case config::MirrorTarget::pcapng:
      return "pcapng " + c.path;
  }
  return "";
}

CmdResult show_mirrors(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.size() > 1) return CmdResult::error("usage: show mirrors [NAME]");
  MirrorSys* sys = dp.find_feature<MirrorSys>();
  CmdResult r;
  r.json = nlohmann::json::object();
  TextTable t({{"NAME"},
               {"SOURCE"},
               {"ACTION"},
               {"FILTER"},
               {"TO"},
               {"HITS", TextTable::right},
               {"BYTES", TextTable::right},
               {"COPIES", TextTable::right},
               {"FAILED", TextTable::right},
               {"SAMPLED OUT", TextTable::right},
               {"DROPS", TextTable::right}});
  bool any = false;
  if (sys != nullptr) {
    for (auto& mp : sys->mirrors) {
      const Mirror& m = *mp;
      const config::Mirror& c = m.cfg;
      if (!args.empty() && args[0] != c.name) continue;
      any = true;
      Counters k = m.total();
      nlohmann::json drops = nlohmann::json::object();
      uint64_t ndrops = 0;
      for (unsigned i = 0; i < kNumMirrorDrops; i++) {
        if (k.drops[i] == 0) continue;
        drops[drop_reason_name(kMirrorDropReason[i])] = k.drops[i];
        ndrops += k.drops[i];
      }
      uint64_t failed = k.copies_failed;
      nlohmann::json j = {{"source", c.source},
                          {"direction", direction_name(static_cast<Direction>(c.direction))},
                          {"action", c.redirect ? "redirect" : "mirror"},
                          {"filter", c.filter},
                          {"to", destination(c)},
                          {"sample", c.sample},
                          {"snaplen", c.snaplen},
                          {"hits", k.hits},
                          {"bytes", k.bytes},
                          {"copies", k.copies},
                          {"sampled_out", k.sampled_out},
                          {"skipped", k.skipped},
                          {"drops", drops}};
      j["filter_engine"] = m.filter ? nlohmann::json(m.filter->engine()) : nlohmann::json(nullptr);
      if (c.to == config::MirrorTarget::pcapng) {
        CaptureInfo ci;
        if (auto* cm = dp.find_feature<CaptureManager>(); cm && cm->info(m.sink_id, &ci)) {
          // What the sink's own pool or ring could not take failed too.
          failed += ci.nombuf + ci.ringfull;
          j["written"] = ci.written;
        }
      }
      j["copies_failed"] = failed;
      r.json[c.name] = std::move(j);
      t.add({c.name, c.source + " " + direction_name(static_cast<Direction>(c.direction)),
             c.redirect ? "redirect" : "mirror", c.filter.empty() ? "-" : c.filter, destination(c),
             std::to_string(k.hits), std::to_string(k.bytes), std::to_string(k.copies),
             std::to_string(failed), std::to_string(k.sampled_out), std::to_string(ndrops)});
    }
  }
  if (!args.empty() && !any) return CmdResult::error("no mirror '" + args[0] + "'");
  r.text = any ? t.str() : "no mirrors\n";
  return r;
}

const CommandRegistrar kCommands{
    {{"show", "mirrors"},
     "show mirrors [NAME]",
     "mirror and redirect actions (tc mirred) with their counters",
     show_mirrors},
};

}  // namespace
}  // namespace sluice::mirror
