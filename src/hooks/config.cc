// The `hooks:` (rule lists) and `plugins:` sections (docs/config.md,
// docs/hooks.md) parsed into hooks::Config, and the hooks feature's
// registration: it sets up after the features that own hook points.
#include "hooks/config.hh"

#include <map>

#include "config/loader.hh"
#include "core/feature.hh"
#include "hooks/hooks.hh"
#include "hooks/setup.hh"

namespace sluice::hooks {

using namespace sluice::config;

namespace {

struct HookIn {
  HookListCfg v;
  std::string priority;  // resolved once the point is known (bridge names differ)
  Mark priority_at{0, 0};
};

void resolve_priority(Loader& l, const std::string& point, const std::string& pri, Mark at,
                      int* out) {
  if (pri.empty()) return;
  if (!parse_priority(pri, point.rfind("bridge/", 0) == 0, out))
    l.fail(at, "unknown priority '" + pri +
                   "' (an integer, or for ipv4/ipv6/arp: first, raw_before_defrag, "
                   "conntrack_defrag, raw, selinux_first, conntrack, mangle, nat_dst, filter, "
                   "security, nat_src, selinux_last, conntrack_helper, conntrack_confirm, last; "
                   "for bridge: first, nat_dst_bridged, filter_bridged, brnf, nat_dst_other, "
                   "filter_other, nat_src, last)");
}

std::string hook_point(Loader& l, const Field& f) {
  std::string s = l.get_string(f);
  Point p;
  if (!parse_point(s, &p))
    l.fail(f.at(), f.what() + ": unknown hook point '" + s +
                       "' (ipv4|ipv6|bridge/pre_routing|local_in|forward|local_out|post_routing, "
                       "arp/in|out|forward)");
  return s;
}

void rule_match(Loader& l, Rule& r, const Field& f) {
  if (!f.value.IsMap()) l.fail(f.at(), f.what() + " must be a map like {proto: tcp, dst_port: 80}");
  for (const auto& kv : f.value) {
    const YAML::Node& k = kv.first;
    const YAML::Node& v = kv.second;
    if (!k.IsScalar()) l.fail(k, f.what() + ": keys must be plain names");
    if (!v.IsScalar())
      l.fail(to_mark(v.Mark()), f.what() + ": " + k.Scalar() + " must be a scalar");
    bool unknown = false;
    std::string e = parse_match(k.Scalar(), v.Scalar(), &r.match, &unknown);
    if (!e.empty()) l.fail(unknown ? to_mark(k.Mark()) : to_mark(v.Mark()), f.where + ": " + e);
  }
}
void rule_verdict(Loader& l, Rule& r, const Field& f) {
  std::string s = l.get_string(f);
  if (!parse_rule_verdict(s, &r.verdict))
    l.fail(f.at(), f.what() + " must be accept, drop, continue or queue, got '" + s + "'");
}
void rule_counter(Loader& l, Rule& r, const Field& f) {
  r.counter = l.get_bool(f);
}
void rule_log(Loader& l, Rule& r, const Field& f) {
  r.log = l.get_bool(f);
}
void rule_set_mark(Loader& l, Rule& r, const Field& f) {
  r.set_mark = l.get_uint(f, 0, 0xffffffffu, "a 32-bit mark");
  r.has_set_mark = true;
}
void rule_queue(Loader& l, Rule& r, const Field& f) {
  r.queue = static_cast<uint16_t>(l.get_uint(f, 0, kRuleQueues - 1, "a queue number"));
  r.has_queue = true;
}
void rule_bypass(Loader& l, Rule& r, const Field& f) {
  r.bypass = l.get_bool(f);
}
constexpr KeyDef<Rule> kRuleKeys[] = {{"match", rule_match},       {"verdict", rule_verdict},
                                      {"counter", rule_counter},   {"log", rule_log},
                                      {"set_mark", rule_set_mark}, {"queue", rule_queue},
                                      {"bypass", rule_bypass}};

void hook_name(Loader& l, HookIn& h, const Field& f) {
  h.v.name = l.get_string(f);
  h.v.name_at = f.at();
}
void hook_point_key(Loader& l, HookIn& h, const Field& f) {
  h.v.point = hook_point(l, f);
  h.v.point_at = f.at();
}
void hook_priority(Loader& l, HookIn& h, const Field& f) {
  h.priority = l.get_string(f);
  h.priority_at = f.at();
}
void hook_rules(Loader& l, HookIn& h, const Field& f) {
  auto entries = l.get_list(f, "rules ({match: {...}, verdict: ...})");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = f.where + ": rule #" + std::to_string(i + 1);
    if (!e.IsMap()) l.fail(e, where + " must be a map ({match: {...}, verdict: ...})");
    Rule r;
    l.parse_keys<Rule>(e, where, kRuleKeys, r);
    if ((r.has_queue || r.bypass) && r.verdict != RuleVerdict::queue)
      l.fail(e, where + ": queue and bypass go with verdict: queue");
    h.v.rules.push_back(std::move(r));
  }
}
constexpr KeyDef<HookIn> kHookKeys[] = {{"name", hook_name},
                                        {"point", hook_point_key},
                                        {"priority", hook_priority},
                                        {"rules", hook_rules}};

void section_hooks(Loader& l, const Field& f) {
  auto entries = l.get_list(f, "hook rule lists ({point: ..., name: ..., rules: [...]})");
  std::map<std::string, Mark> names;
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = "hook #" + std::to_string(i + 1);
    if (!e.IsMap()) l.fail(e, where + " must be a map of settings");
    HookIn h;
    h.v.mark = to_mark(e.Mark());
    auto seen = l.parse_keys<HookIn>(e, where, kHookKeys, h);
    l.require(e, where, seen, {"point", "name"});
    resolve_priority(l, h.v.point, h.priority, h.priority_at, &h.v.priority);
    auto [it, fresh] = names.emplace(h.v.name, h.v.name_at);
    if (!fresh)
      l.fail(h.v.name_at,
             "duplicate hook name '" + h.v.name + "' (first at " + mark_str(it->second) + ")");
    l.topo.get<hooks::Config>().hooks.push_back(std::move(h.v));
  }
}

struct PluginIn {
  PluginCfg v;
  std::string priority;
  Mark priority_at{0, 0};
};
void plugin_path(Loader& l, PluginIn& p, const Field& f) {
  p.v.path = l.get_string(f);
  p.v.path_at = f.at();
}
void plugin_point(Loader& l, PluginIn& p, const Field& f) {
  p.v.point = hook_point(l, f);
}
void plugin_priority(Loader& l, PluginIn& p, const Field& f) {
  p.priority = l.get_string(f);
  p.priority_at = f.at();
}
void plugin_args(Loader& l, PluginIn& p, const Field& f) {
  p.v.args = l.get_string(f);
}
constexpr KeyDef<PluginIn> kPluginKeys[] = {{"path", plugin_path},
                                            {"point", plugin_point},
                                            {"priority", plugin_priority},
                                            {"args", plugin_args}};

void section_plugins(Loader& l, const Field& f) {
  auto entries = l.get_list(f, "plugins ({path: ..., point: ..., priority: ...})");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = "plugin #" + std::to_string(i + 1);
    if (!e.IsMap()) l.fail(e, where + " must be a map of settings");
    PluginIn p;
    p.v.mark = to_mark(e.Mark());
    auto seen = l.parse_keys<PluginIn>(e, where, kPluginKeys, p);
    l.require(e, where, seen, {"path"});
    resolve_priority(l, p.v.point, p.priority, p.priority_at, &p.v.priority);
    l.topo.get<hooks::Config>().plugins.push_back(std::move(p.v));
  }
}

}  // namespace

const Feature kFeature{
    .name = "hooks",
    .after = {"bridge", "l3"},  // they register the hook points that rule lists attach to
    .sections = {{"hooks", 80, section_hooks}, {"plugins", 81, section_plugins}},
    .setup = setup,
    .reload = reload_feature,
};
const FeatureRegistrar kRegistrar{kFeature};

}  // namespace sluice::hooks
