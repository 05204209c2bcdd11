// The hooks feature in the daemon: rule lists and plugins from the topology,
// the plugin host table (include/sluice/hook.hh), the adapter that serves the
// bridge's hook points from this registry, and `show hooks` / `hooks reload`.
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

// ---- the bridge adapter ----------------------------------------------------------

namespace {

struct BridgeEntry {
  Registry* reg;
  Entry e;  // a copy: fn, priv, slot
};
std::vector<std::unique_ptr<BridgeEntry>> g_bridge_entries;

void bridge_fn(Worker& w, const bridge::HookCtx& ctx, void* priv, rte_mbuf** pkts, uint16_t n,
               bridge::Verdict* verdicts) {
  auto* be = static_cast<BridgeEntry*>(priv);
  // local_in: out = the bridge device (kNoDev for a link-local frame), so a
  // queued frame resumes where it was (bridge::resume).
  const Device* out = ctx.point == bridge::HookPoint::local_in ? ctx.bridge : ctx.out;
  State st{static_cast<uint8_t>(SLUICE_BRIDGE_PRE_ROUTING + static_cast<unsigned>(ctx.point)),
           static_cast<uint16_t>(w.id), ctx.in != nullptr ? ctx.in->index : kNoDev,
           out != nullptr ? out->index : kNoDev, nullptr};
  uint32_t v[kBurst];
  be->e.fn(w, st, be->e.priv, pkts, n, v);
  EntryCounters& c = be->reg->ctr(w.id, be->e.slot);
  c.hits += n;
  const uint16_t drop_dev = st.in != kNoDev ? st.in : st.out;
  for (uint16_t i = 0; i < n; i++) {
    switch (v[i] & 0xff) {
      case SLUICE_ACCEPT:
        verdicts[i] = bridge::Verdict::accept;
        break;
      case SLUICE_STOP:
        verdicts[i] = bridge::Verdict::stop;
        break;
      case SLUICE_DROP:
        c.drops++;
        verdicts[i] = bridge::Verdict::drop;
        break;
      case SLUICE_QUEUE:  // queued frames left the bridge's walk (stolen for it)
        switch (be->reg->queue(w, st, be->e, pkts[i], v[i], drop_dev)) {
          case Registry::QueueResult::bypass:
            verdicts[i] = bridge::Verdict::accept;
            break;
          default:  // queued, or dropped and counted by queue()
            verdicts[i] = bridge::Verdict::stolen;
            break;
        }
        break;
      default:
        c.stolen++;
        verdicts[i] = bridge::Verdict::stolen;
        break;
    }
  }
}

// br_nf_forward_arp (br_netfilter with bridge-nf-call-arptables = 1, its
// default): at bridge/forward, priority brnf (0), ARP frames the bridge
// forwards run the arp/forward points (in, out = the bridge ports). Dropped
// and queued frames leave the bridge's walk; the others go on.
void arp_forward_fn(Worker& w, const bridge::HookCtx& ctx, void* priv, rte_mbuf** pkts, uint16_t n,
                    bridge::Verdict* verdicts) {
  auto* reg = static_cast<Registry*>(priv);
  rte_mbuf* arp[kBurst];
  uint16_t pos[kBurst], kept[kBurst];
  uint16_t na = 0;
  for (uint16_t i = 0; i < n; i++) {
    verdicts[i] = bridge::Verdict::accept;
    if (meta(pkts[i]).protocol == 0x0806) {
      pos[na] = i;
      arp[na++] = pkts[i];
    }
  }
  if (na == 0 || reg->list(SLUICE_ARP_FORWARD) == nullptr) return;
  State st{SLUICE_ARP_FORWARD, static_cast<uint16_t>(w.id),
           ctx.in != nullptr ? ctx.in->index : kNoDev, ctx.out != nullptr ? ctx.out->index : kNoDev,
           nullptr};
  for (uint16_t i = 0; i < na; i++) verdicts[pos[i]] = bridge::Verdict::stolen;
  uint16_t k = reg->run(w, st, arp, na, st.in, kept);
  for (uint16_t i = 0; i < k; i++) {
    pkts[pos[kept[i]]] = arp[i];  // a hook may have replaced the mbuf (copy-on-write)
    verdicts[pos[kept[i]]] = bridge::Verdict::accept;
  }
}

// The okfn of the bridge points: bridge::resume.
void bridge_okfn(Worker& w, const State& st, rte_mbuf** pkts, uint16_t n, void*) {
  bridge::resume(w, static_cast<bridge::HookPoint>(st.point - SLUICE_BRIDGE_PRE_ROUTING), pkts, n,
                 st.in, st.out);
}
void bridge_okfn_forward(Worker& w, const State& st, rte_mbuf** pkts, uint16_t n, void*) {
  bridge::resume(w, bridge::HookPoint::forward, pkts, n, st.in, st.out);
}

}  // namespace

unsigned attach_bridge(Registry& reg, bridge::Hooks& bh) {
  unsigned n = 0;
  if (reg.list(SLUICE_ARP_FORWARD) != nullptr) {
    reg.bridge_ids.push_back(bh.add(bridge::HookPoint::forward, bridge::kPriBrnf,
                                    "br_nf_forward_arp", arp_forward_fn, &reg));
    // A queued ARP frame goes on where br_nf_forward_finish would: out of the bridge port.
    reg.set_okfn(SLUICE_ARP_FORWARD, bridge_okfn_forward, nullptr);
    n++;
  }
  for (unsigned p = SLUICE_BRIDGE_PRE_ROUTING; p <= SLUICE_BRIDGE_POST_ROUTING; p++) {
    reg.set_okfn(static_cast<Point>(p), bridge_okfn, nullptr);
    const List* l = reg.list(p);
    if (l == nullptr) continue;
    // Adding in reverse run order keeps equal priorities in our order (the
    // bridge's list is LIFO among equals too).
    for (auto it = l->entries.rbegin(); it != l->entries.rend(); ++it) {
      g_bridge_entries.push_back(std::make_unique<BridgeEntry>(BridgeEntry{&reg, *it}));
      reg.bridge_ids.push_back(bh.add(static_cast<bridge::HookPoint>(p - SLUICE_BRIDGE_PRE_ROUTING),
                                      it->priority, it->name, bridge_fn,
                                      g_bridge_entries.back().get()));
      n++;
    }
  }
  return n;
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
  Registry& reg = dp.feature<Registry>();
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
  if (auto* br = dp.find_feature<bridge::BridgeSys>()) {
    unsigned n = attach_bridge(reg, br->hooks);
    if (n != 0) spdlog::info("hooks: {} entries on the bridge hook points", n);
  }
  for (auto& rl : reg.rule_lists)
    spdlog::info("hooks: {} at {} priority {}: {} rules", rl->name(), point_name(rl->point()),
                 rl->priority(), rl->size());
}

std::string reload(Dataplane& dp, const std::vector<config::HookListCfg>& cfg) {
  Registry& reg = dp.feature<Registry>();
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
  Registry& reg = dp.feature<Registry>();
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
    if (l == nullptr && only == kNumPoints) continue;
    auto arr = nlohmann::json::array();
    if (l != nullptr) {
      for (const Entry& e : l->entries) {
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
