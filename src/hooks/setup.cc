// The hooks feature in the daemon: rule lists and plugins from the topology,
// the plugin host table (include/sluice/hook.hh), br_netfilter's arp/forward
// step on a bridge, and `show hooks` / `hooks reload`.
#include <dlfcn.h>

#include <cstring>
#include <map>

#include <rte_cycles.h>
#include <spdlog/spdlog.h>

#include "bridge/bridge.hh"
#include "hooks/config.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "hooks/hooks.hh"
#include "hooks/rules.hh"
#include "hooks/setup.hh"

namespace sluice::hooks {

namespace {

Registry* g_host_reg = nullptr;  // the registry plugins registered into (one daemon per process)

void plugin_fn(Worker& w, const State& st, void* priv, rte_mbuf** pkts, uint16_t n,
               uint32_t* verdicts) {
  (void)w;
  auto* ph = static_cast<Registry::PluginHook*>(priv);
  ph->fn(&st, ph->priv, reinterpret_cast<sluice_pkt**>(pkts), n, verdicts);
}

rte_mbuf* mb(sluice_pkt* p) {
  return reinterpret_cast<rte_mbuf*>(p);
}
const rte_mbuf* mb(const sluice_pkt* p) {
  return reinterpret_cast<const rte_mbuf*>(p);
}

uint32_t h_register(void* ctx, uint8_t point, int priority, const char* name, sluice_hook_fn fn,
                    void* priv) {
  auto* reg = static_cast<Registry*>(ctx);
  if (point >= kNumPoints || fn == nullptr) return 0;
  reg->plugin_hooks.push_back(
      std::make_unique<Registry::PluginHook>(Registry::PluginHook{fn, priv}));
  return reg->add(static_cast<Point>(point), priority, name != nullptr ? name : "plugin", plugin_fn,
                  reg->plugin_hooks.back().get(), Owner::plugin);
}
int h_unregister(void* ctx, uint32_t id) {
  return static_cast<Registry*>(ctx)->remove(id) ? 0 : -1;
}
const uint8_t* h_data(const sluice_pkt* p) {
  return rte_pktmbuf_mtod(mb(p), const uint8_t*);
}
uint32_t h_len(const sluice_pkt* p) {
  return mb(p)->data_len;
}
uint32_t h_l3_offset(const sluice_pkt*) {
  return sizeof(rte_ether_hdr);
}
void h_meta(const sluice_pkt* p, sluice_pkt_meta* out) {
  const PktMeta& m = meta(mb(p));
  *out = sluice_pkt_meta{m.dev,      m.protocol,
                         m.pkt_type, static_cast<uint8_t>((m.flags & kFlagVlan) ? 1 : 0),
                         m.vlan_tci, m.mark};
}
void h_set_mark(sluice_pkt* p, uint32_t mark) {
  meta(mb(p)).mark = mark;
}
uint8_t* h_writable(sluice_pkt** pp) {
  rte_mbuf* m = mb(*pp);
  if (rte_mbuf_refcnt_read(m) != 1 || !RTE_MBUF_DIRECT(m)) {  // copy-on-write
    rte_mbuf* c = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
    if (c == nullptr) return nullptr;
    std::memcpy(rte_mbuf_to_priv(c), rte_mbuf_to_priv(m), sizeof(PktMeta));
    rte_pktmbuf_free(m);
    *pp = reinterpret_cast<sluice_pkt*>(c);
    m = c;
  }
  return rte_pktmbuf_mtod(m, uint8_t*);
}
uint16_t h_out_dev(const sluice_hook_state* st, uint16_t i) {
  return out_of(*st, i);
}
const char* h_dev_name(uint16_t d) {
  if (g_host_reg == nullptr) return "";
  const Device* dev = g_host_reg->dp.net.dev(d);
  return dev != nullptr ? dev->name.c_str() : "";
}
void h_log(int level, const char* msg) {
  spdlog::log(static_cast<spdlog::level::level_enum>(std::clamp(level, 0, 5)), "plugin: {}", msg);
}
// Token bucket per key: per_second messages each second (any thread).
bool h_ratelimit(void* ctx, uint32_t key, uint32_t per_second) {
  (void)ctx;
  struct Slot {
    std::atomic<uint64_t> sec{0};
    std::atomic<uint32_t> n{0};
  };
  static Slot slots[256];
  Slot& s = slots[key & 255];
  uint64_t now = rte_get_tsc_cycles() / rte_get_tsc_hz();
  if (s.sec.load(std::memory_order_relaxed) != now) {
    s.sec.store(now, std::memory_order_relaxed);
    s.n.store(0, std::memory_order_relaxed);
  }
  return s.n.fetch_add(1, std::memory_order_relaxed) < per_second;
}
void h_free(sluice_pkt* p) {
  rte_pktmbuf_free(mb(p));
}
int h_queue_bind(void* ctx, uint16_t q) {
  return static_cast<Registry*>(ctx)->bind(q, true) ? 0 : -1;
}
int h_queue_unbind(void* ctx, uint16_t q) {
  auto* reg = static_cast<Registry*>(ctx);
  if (!reg->bound(q)) return -1;
  reg->bind(q, false);
  return 0;
}
unsigned h_queue_read(void* ctx, uint16_t q, sluice_queued* out, unsigned n) {
  Queued buf[64];
  unsigned got = static_cast<Registry*>(ctx)->read(q, buf, std::min(n, 64u));
  for (unsigned i = 0; i < got; i++)
    out[i] = sluice_queued{reinterpret_cast<sluice_pkt*>(buf[i].m),
                           buf[i].id,
                           buf[i].queue,
                           buf[i].point,
                           buf[i].in,
                           buf[i].out};
  return got;
}
void h_queue_verdict(void* ctx, const sluice_queued* qp, uint32_t v) {
  // The walk's state travels in the packet's metadata; the consumer may have
  // replaced the mbuf (writable()), which copies the metadata.
  static_cast<Registry*>(ctx)->verdict_pkt(mb(qp->pkt), v);
}

}  // namespace

sluice_host host_table(Registry& reg) {
  g_host_reg = &reg;
  return sluice_host{SLUICE_HOOK_ABI, &reg,           h_register,   h_unregister,   h_data,
                     h_len,           h_l3_offset,    h_meta,       h_set_mark,     h_writable,
                     h_out_dev,       h_dev_name,     h_log,        h_ratelimit,    h_free,
                     h_queue_bind,    h_queue_unbind, h_queue_read, h_queue_verdict};
}

std::string load_plugin(Registry& reg, const std::string& path, const std::string& point,
                        int priority, const std::string& text) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) return "plugin '" + path + "': " + dlerror();
  auto init = reinterpret_cast<sluice_plugin_init_fn>(dlsym(h, SLUICE_PLUGIN_INIT));
  if (init == nullptr) {
    dlclose(h);
    return "plugin '" + path + "': no " SLUICE_PLUGIN_INIT "()";
  }
  Point p = SLUICE_POINT_COUNT;
  if (!point.empty() && !parse_point(point, &p)) {
    dlclose(h);
    return "plugin '" + path + "': unknown point '" + point + "'";
  }
  static sluice_host host;  // must outlive the plugin: it may keep the pointer
  host = host_table(reg);
  sluice_plugin_args args{static_cast<uint8_t>(p), priority, path.c_str(), text.c_str()};
  int rc = init(&host, &args);
  if (rc != 0) {
    dlclose(h);
    return "plugin '" + path + "': init returned " + std::to_string(rc);
  }
  reg.plugins.emplace_back(path, h);
  spdlog::info("hooks: plugin {} loaded", path);
  return "";
}

void fini_plugins(Registry& reg) {
  for (auto& [path, h] : reg.plugins)
    if (auto fini = reinterpret_cast<sluice_plugin_fini_fn>(dlsym(h, SLUICE_PLUGIN_FINI))) fini();
}

std::string load_rule_lists(Registry& reg, const std::vector<config::HookListCfg>& cfg) {
  for (const auto& h : cfg) {
    Point p;
    if (!parse_point(h.point, &p)) return "hook '" + h.name + "': unknown point '" + h.point + "'";
    auto rl = std::make_unique<RuleList>(reg, h.name, p, h.priority);
    std::string e = rl->load(h.rules);
    if (!e.empty()) return e;
    if (!rl->attach()) return "hook '" + h.name + "': point " + h.point + " is full";
    reg.rule_lists.push_back(std::move(rl));
  }
  return "";
}

void setup(Dataplane& dp) {
  Registry& reg = registry(dp);
  dp.add_shutdown([&reg]() {  // last: what is still queued or waiting to resume
    if (unsigned n = reg.drain()) spdlog::info("hooks: {} queued packet(s) freed at shutdown", n);
  });
  dp.add_shutdown([&dp]() { queue_console_shutdown(dp); });
  dp.add_shutdown([&reg]() { fini_plugins(reg); });  // runs first (reverse order)
  std::string e = load_rule_lists(reg, dp.topo.get<Config>().hooks);
  if (!e.empty()) throw std::runtime_error(e);
  for (const auto& p : dp.topo.get<Config>().plugins) {
    e = load_plugin(reg, p.path, p.point, p.priority, p.args);
    if (!e.empty()) throw std::runtime_error(e);
  }
  bridge::br_netfilter_attach(dp);  // after everything that may fill arp/forward
  for (auto& rl : reg.rule_lists)
    spdlog::info("hooks: {} at {} priority {}: {} rules", rl->name(), point_name(rl->point()),
                 rl->priority(), rl->size());
}

std::string reload(Dataplane& dp, const std::vector<config::HookListCfg>& cfg) {
  Registry& reg = registry(dp);
  std::map<std::string, RuleList*> by_name;
  for (auto& rl : reg.rule_lists) by_name[rl->name()] = rl.get();
  // Check everything first: a bad list changes nothing.
  for (const auto& h : cfg) {
    auto it = by_name.find(h.name);
    Point p;
    if (it == by_name.end() || !parse_point(h.point, &p) || p != it->second->point() ||
        h.priority != it->second->priority())
      return "hook '" + h.name + "': reload changes rules only (not lists, points or priorities)";
    std::string e = it->second->load(h.rules, true);
    if (!e.empty()) return e;
  }
  if (cfg.size() != by_name.size())
    return "reload changes rules only (the number of hook lists differs)";
  for (const auto& h : cfg) {
    std::string e = by_name[h.name]->load(h.rules);
    if (!e.empty()) return e;
  }
  return "";
}

std::string reload_feature(Dataplane& dp, const config::Topology& next, bool apply) {
  if (dp.topo.section_differs(next, "plugins"))
    return next.file +
           ": 'plugins' changed: loading or unloading a plugin needs a restart of sluiced";
  Registry& reg = registry(dp);
  const auto& cfg = next.get<Config>().hooks;
  auto find = [&](const std::string& name) -> RuleList* {
    for (auto& rl : reg.rule_lists)
      if (rl->name() == name) return rl.get();
    return nullptr;
  };
  // A list keeps its entry (and counters) when its point and priority stay.
  auto kept = [&](const config::HookListCfg& h, RuleList* rl) {
    Point p;
    return rl != nullptr && parse_point(h.point, &p) && p == rl->point() &&
           h.priority == rl->priority();
  };
  if (!apply) {
    for (const auto& h : cfg) {
      RuleList* rl = find(h.name);
      Point p;
      if (!parse_point(h.point, &p))
        return "hook '" + h.name + "': unknown point '" + h.point + "'";
      std::string e;
      if (kept(h, rl)) {
        e = rl->load(h.rules, true);
      } else {
        RuleList probe(reg, h.name, p, h.priority);  // never attached
        e = probe.load(h.rules, true);
      }
      if (!e.empty()) return config::where(next.file, h.mark) + e;
    }
    return "";
  }
  // Workers are paused: lists leave, change and arrive in place.
  std::vector<std::unique_ptr<RuleList>> keep;
  for (auto& rl : reg.rule_lists) {
    const config::HookListCfg* h = nullptr;
    for (const auto& c : cfg)
      if (c.name == rl->name()) h = &c;
    if (h != nullptr && kept(*h, rl.get())) {
      keep.push_back(std::move(rl));
    } else {
      spdlog::info("hooks: {} removed from {}", rl->name(), point_name(rl->point()));
      rl.reset();  // detaches; its table is freed after the grace period
    }
  }
  reg.rule_lists = std::move(keep);
  std::string err;
  for (const auto& h : cfg) {
    if (RuleList* rl = find(h.name)) {
      if (std::string e = rl->load(h.rules); !e.empty() && err.empty()) err = e;
      continue;
    }
    std::string e = load_rule_lists(reg, {h});
    if (!e.empty() && err.empty()) err = e;
    if (e.empty()) spdlog::info("hooks: {} added at {} priority {}", h.name, h.point, h.priority);
  }
  bridge::br_netfilter_attach(dp);  // arp/forward may have gained its first list or lost its last
  return err;
}

// ---- CLI ------------------------------------------------------------------------------

namespace {

const char* owner_name(Owner o) {
  switch (o) {
    case Owner::rules:
      return "rules";
    case Owner::plugin:
      return "plugin";
    default:
      return "builtin";
  }
}

CmdResult show_hooks(Dataplane& dp, const std::vector<std::string>& args) {
  Registry& reg = registry(dp);
  unsigned only = kNumPoints;
  if (!args.empty()) {
    Point p;
    if (args.size() > 1 || !parse_point(args[0], &p))
      return CmdResult::error("usage: show hooks [POINT] (e.g. ipv4/forward)");
    only = p;
  }
  CmdResult r;
  r.json = nlohmann::json::object();
  for (unsigned p = 0; p < kNumPoints; p++) {
    if (only != kNumPoints && p != only) continue;
    const List* l = reg.list(p);
    const bool shown =
        l != nullptr && std::any_of(l->entries.begin(), l->entries.end(),
                                    [](const Entry& e) { return e.owner != Owner::internal; });
    if (!shown && only == kNumPoints) continue;
    auto arr = nlohmann::json::array();
    if (l != nullptr) {
      for (const Entry& e : l->entries) {
        if (e.owner == Owner::internal) continue;  // the daemon's own steps
        EntryCounters c = reg.counters(e.slot);
        nlohmann::json j{
            {"name", e.name},    {"priority", e.priority}, {"owner", owner_name(e.owner)},
            {"hits", c.hits},    {"drops", c.drops},       {"queued", c.queued},
            {"stolen", c.stolen}};
        if (e.owner == Owner::rules) {
          auto* rl = static_cast<RuleList*>(e.priv);
          auto rules = nlohmann::json::array();
          for (uint64_t h : rl->rule_hits()) rules.push_back({{"hits", h}});
          j["rules"] = rules;
        }
        arr.push_back(j);
        r.text += std::string(point_name(p)) + "  " + std::to_string(e.priority) + "  " + e.name +
                  " (" + owner_name(e.owner) + ")  hits " + std::to_string(c.hits) + "  drops " +
                  std::to_string(c.drops) + "\n";
      }
    }
    r.json[point_name(p)] = arr;
  }
  if (r.text.empty()) r.text = "no hooks\n";
  return r;
}

CmdResult hooks_reload(Dataplane& dp, const std::vector<std::string>& args) {
  std::string file = args.empty() ? dp.topo.file : args[0];
  config::Topology t;
  try {
    t = config::load_file(file);
  } catch (const std::exception& e) {
    return CmdResult::error(e.what());
  }
  std::string e = reload(dp, t.get<Config>().hooks);
  if (!e.empty()) return CmdResult::error(e);
  CmdResult r;
  r.text = "hooks reloaded from " + file + "\n";
  r.json = {{"reloaded", t.get<Config>().hooks.size()}};
  return r;
}

CommandRegistrar r1(
    {{"show", "hooks"},
     "show hooks [POINT]",
     "hook entries of each point in run order: priority, owner, hits, drops, rule hits",
     show_hooks});
CommandRegistrar r2({{"hooks", "reload"},
                     "hooks reload [FILE]",
                     "re-read the hook rule lists (rules only) and swap them in under RCU",
                     hooks_reload});

}  // namespace

}  // namespace sluice::hooks
