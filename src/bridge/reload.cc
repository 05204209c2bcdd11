// The bridge's part of a live reload (Feature::reload, src/control/reload.cc).
//
// Live: new bridges (built as at start: they take their ports' rx_handler
// slots, which must be free or freed by this reload), removed bridges (their
// ports' slots are released and the ports are plain devices again, the FDB
// is freed, the bridge device is unregistered with what L3 held on it),
// ports added to and removed from a running bridge without STP, and the
// settings that apply in place: ageing_s, group_fwd_mask, the STP timers and
// priorities of a bridge whose STP is off, and the per-port flags (learning,
// flood, mcast_flood, bcast_flood, hairpin), group_fwd_mask, priority and
// path_cost. An unchanged bridge keeps its FDB, STP state and counters.
//
// Refused with the reason (a restart applies them): a bridge's mac (its FDB
// local entry and STP bridge id), max_fdb_entries (the FDB's size), stp on
// or off, vlan_filtering and default_pvid, the VLANs, pvid and forced state
// of a port, the STP timers and priorities of an STP bridge, the ports of
// an STP bridge, fdb_static (`fdb add|del` edits the FDB while running).
//
// Bridge numbers (Bridge::idx) are never reused: what workers queued before
// a removal (learn requests, their source caches, counters by number) names
// no bridge afterwards rather than another one.
#include <algorithm>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "bridge/bridge.hh"
#include "bridge/config.hh"
#include "core/dataplane.hh"

namespace sluice::bridge {

namespace {

bool same_vlans(const config::BridgePortSettings& a, const config::BridgePortSettings& b) {
  return a.pvid == b.pvid && a.vlans == b.vlans && a.untagged == b.untagged && a.state == b.state;
}

const config::BridgePortSettings* settings_of(const config::Bridge& b, const std::string& port) {
  for (auto& s : b.port_settings)
    if (s.port == port) return &s;
  return nullptr;
}

bool has_port(const config::Bridge& b, const std::string& port) {
  return std::find(b.ports.begin(), b.ports.end(), port) != b.ports.end();
}

const config::Bridge* named(const std::vector<config::Bridge>& v, const std::string& name) {
  for (auto& b : v)
    if (b.name == name) return &b;
  return nullptr;
}

// What may differ between a running bridge and the file: "" or why not.
std::string bridge_change(const config::Bridge& o, const config::Bridge& n) {
  if (o.mac != n.mac) return "its mac changed (its FDB local entry and STP bridge id): ";
  if (o.max_fdb_entries != n.max_fdb_entries)
    return "max_fdb_entries changed (the FDB table is sized at creation): ";
  if (o.stp != n.stp) return "stp was turned " + std::string(n.stp ? "on" : "off") + ": ";
  if (o.vlan_filtering != n.vlan_filtering || o.default_pvid != n.default_pvid)
    return "vlan_filtering or default_pvid changed (every port's VLANs follow them): ";
  if (o.stp && (o.priority != n.priority || o.hello_s != n.hello_s || o.max_age_s != n.max_age_s ||
                o.forward_delay_s != n.forward_delay_s))
    return "the STP priority or timers of an STP bridge changed (its bridge id and the "
           "running protocol): ";
  if (o.fdb_static.size() != n.fdb_static.size())
    return "fdb_static changed (use `fdb add|del` while running), so ";
  for (size_t i = 0; i < o.fdb_static.size(); i++)
    if (o.fdb_static[i].mac != n.fdb_static[i].mac ||
        o.fdb_static[i].port != n.fdb_static[i].port ||
        o.fdb_static[i].vlan != n.fdb_static[i].vlan)
      return "fdb_static changed (use `fdb add|del` while running), so ";
  if (o.stp && o.ports != n.ports) return "its ports changed and STP is on: ";
  for (const auto& p : o.ports) {
    if (!has_port(n, p)) continue;
    const config::BridgePortSettings none;
    const auto* a = settings_of(o, p);
    const auto* b = settings_of(n, p);
    if (!same_vlans(a ? *a : none, b ? *b : none))
      return "the VLANs, pvid or state of port '" + p + "' changed: ";
    if (o.stp && (a ? a->priority : none.priority) != (b ? b->priority : none.priority))
      return "the STP priority of port '" + p + "' changed on an STP bridge: ";
    if (o.stp && (a ? a->path_cost : none.path_cost) != (b ? b->path_cost : none.path_cost))
      return "the STP path_cost of port '" + p + "' changed on an STP bridge: ";
  }
  return "";
}

// A device that is to become a port of `br` (new, or a port added): "" or why not.
std::string port_check(Dataplane& dp, const config::Topology& next, const std::string& br,
                       const std::string& name) {
  const auto& olds = dp.topo.get<Config>().bridges;
  const auto& news = next.get<Config>().bridges;
  Device* d = dp.net.find(name);
  if (d == nullptr) {
    // A VLAN this reload adds (the core adds them before the features
    // apply), or a bond (bonds are built before bridges).
    for (const auto& v : next.vlans)
      if (v.name == name && dp.net.find(v.link) != nullptr) return "";
    auto k = next.devices.find(name);
    if (k != next.devices.end() && k->second == "bond") return "";
    return "is not a running device (a new bridge's ports must run, or be a bond or a VLAN on a "
           "running device that this reload adds)";
  }
  if (d->kind == DevKind::bridge) return "is a bridge (ELOOP)";
  // Free now, or freed by this reload: a port of a bridge that goes or drops it.
  bool leaving = false;
  for (auto& ob : olds) {
    if (ob.name == br || !has_port(ob, name)) continue;
    const config::Bridge* nb = named(news, ob.name);
    leaving = nb == nullptr || !has_port(*nb, name);
  }
  if (!leaving && d->master.load() != kNoDev) return "already has a master (EBUSY)";
  if (!leaving && d->rx_handler.load() != nullptr)
    return "already has an rx_handler (EBUSY, owner " +
           std::string(d->rx_handler_owner ? d->rx_handler_owner : "?") + ")";
  if (rte_is_zero_ether_addr(&d->mac) || rte_is_multicast_ether_addr(&d->mac))
    return "has no valid MAC";
  return "";
}

// br_del_if for every port, then the bridge device goes (unregistered: L3
// forgets its addresses, routes and neighbours), then the FDB.
void remove_bridge(Dataplane& dp, BridgeSys& sys, Bridge* br) {
  const std::string name = br->dev->name;
  for (auto& p : br->ports) {
    Device& d = *p->dev;
    if (p->stp_ptype != 0) dp.net.remove_ptype(p->stp_ptype);
    if (d.rx_handler_ctx.load() == p.get()) dp.net.clear_rx_handler(d);
    d.master.store(kNoDev);
    spdlog::info("bridge {}: port {} released (a plain device again)", name, d.name);
    sys.retired_ports.push_back(std::move(p));
  }
  br->ports.clear();
  br->flood_order.clear();
  std::fill(br->by_dev.begin(), br->by_dev.end(), nullptr);
  dp.unregister_device(*br->dev);  // waits out the workers' readers
  const unsigned entries = br->fdb ? br->fdb->size() : 0;
  br->fdb.reset();
  for (auto it = sys.bridges.begin(); it != sys.bridges.end(); ++it)
    if (it->get() == br) {
      sys.retired_bridges.push_back(std::move(*it));
      sys.bridges.erase(it);
      break;
    }
  spdlog::info("bridge {}: removed ({} FDB entries freed)", name, entries);
}

// The settings that apply in place (bridge_change() allowed the rest).
void apply_settings(Bridge& br, const config::Bridge& o, const config::Bridge& n) {
  br.ageing_ms = uint64_t(n.ageing_s) * 1000;
  br.group_fwd_mask = static_cast<uint16_t>(n.group_fwd_mask);
  if (!n.stp) {
    br.stp.priority = static_cast<uint16_t>(n.priority);
    br.stp.bridge_hello_ms = n.hello_s * 1000;
    br.stp.bridge_max_age_ms = n.max_age_s * 1000;
    br.stp.bridge_forward_delay_ms = n.forward_delay_s * 1000;
  }
  for (auto& p : br.ports) {
    if (!has_port(o, p->dev->name)) continue;  // added by this reload: made from n already
    const config::BridgePortSettings none;
    const auto* ps = settings_of(n, p->dev->name);
    const config::BridgePortSettings& s = ps ? *ps : none;
    uint32_t f = 0;
    auto flag = [&f](bool on, uint32_t bit) { f |= on ? bit : 0u; };
    flag(s.learning, kPortLearning);
    flag(s.flood, kPortFlood);
    flag(s.mcast_flood, kPortMcastFlood);
    flag(s.bcast_flood, kPortBcastFlood);
    flag(s.hairpin, kPortHairpin);
    p->flags.store(f, std::memory_order_relaxed);
    p->group_fwd_mask = static_cast<uint16_t>(s.group_fwd_mask);
    if (!n.stp) {
      p->priority = static_cast<uint8_t>(s.priority);
      p->cost_from_speed = s.path_cost == 0;
      if (s.path_cost != 0) p->stp.path_cost = s.path_cost;
    }
  }
}

}  // namespace

std::string reload(Dataplane& dp, const config::Topology& next, bool apply) {
  const auto& olds = dp.topo.get<Config>().bridges;
  const auto& news = next.get<Config>().bridges;
  auto at = [&](const config::Mark& m) { return config::where(next.file, m); };
  BridgeSys* sys = dp.find_feature<BridgeSys>();
  if (!apply) {
    for (auto& n : news) {
      const config::Bridge* o = named(olds, n.name);
      if (n.ports.size() > kMaxBridgePorts) return at(n.mark) + "more than 1023 ports";
      if (o == nullptr) {
        if (dp.net.find(n.name) != nullptr)
          return at(n.mark) + "bridge '" + n.name + "': a device of that name still runs";
      } else if (std::string e = bridge_change(*o, n); !e.empty()) {
        return at(n.mark) + "bridge '" + n.name + "': " + e +
               "that needs a restart of sluiced (nothing was changed)";
      }
      for (size_t i = 0; i < n.ports.size(); i++) {
        if (o != nullptr && has_port(*o, n.ports[i])) continue;
        if (std::string e = port_check(dp, next, n.name, n.ports[i]); !e.empty())
          return at(n.port_at[i]) + "bridge '" + n.name + "': port '" + n.ports[i] + "' " + e;
      }
    }
    return "";
  }

  // Workers are paused. Removed bridges first, then ports that leave (a
  // port may move to another bridge), then new bridges and ports.
  if (sys != nullptr) {
    std::vector<Bridge*> gone;
    for (auto& b : sys->bridges)
      if (named(news, b->dev->name) == nullptr) gone.push_back(b.get());
    for (Bridge* b : gone) remove_bridge(dp, *sys, b);
    for (auto& n : news) {
      Bridge* br = sys->find(n.name);
      if (br == nullptr) continue;
      for (auto it = br->ports.begin(); it != br->ports.end();) {
        BridgePort* p = it->get();
        if (has_port(n, p->dev->name)) {
          ++it;
          continue;
        }
        Device& d = *p->dev;
        dp.net.clear_rx_handler(d);
        d.master.store(kNoDev);
        br->by_dev[d.index] = nullptr;
        const uint16_t idx = d.index;
        unsigned flushed =
            br->fdb->del_if([idx](const FdbEntry& e) { return e.port.load() == idx; });
        spdlog::info("bridge {}: port {} removed ({} FDB entries flushed)", br->dev->name, d.name,
                     flushed);
        sys->retired_ports.push_back(std::move(*it));  // rings may still name it
        it = br->ports.erase(it);
      }
    }
  }
  std::string err;
  for (auto& n : news) {
    if (named(olds, n.name) != nullptr) continue;
    if (sys == nullptr) sys = &dp.feature<BridgeSys>();
    sys->init_workers();
    if (sys->pool == nullptr && !dp.pools.empty()) sys->pool = dp.pools.begin()->second;
    try {
      build_bridge(dp, *sys, n);
    } catch (const std::exception& e) {
      if (err.empty()) err = e.what();
    }
  }
  if (sys == nullptr) return err;
  for (auto& n : news) {
    Bridge* br = sys->find(n.name);
    const config::Bridge* o = named(olds, n.name);
    if (br == nullptr || o == nullptr) continue;
    for (auto& name : n.ports) {
      Device* d = dp.net.find(name);
      if (d == nullptr || br->by_dev[d->index] != nullptr) continue;
      try {
        auto p = new_port(*br, *d, n, 0);
        br->by_dev[d->index] = p.get();
        br->ports.push_back(std::move(p));
        br->fdb->add(d->mac, 0, d->index, kFdbLocal, 0);
        d->master.store(br->dev->index);
        make_promiscuous(dp, *d);
        if (!dp.net.set_rx_handler(*d, br_handle_frame, br->by_dev[d->index], "bridge"))
          throw std::runtime_error("cannot register the rx_handler on '" + name + "'");
        spdlog::info("bridge {}: port {} added", br->dev->name, name);
      } catch (const std::exception& e) {
        if (err.empty()) err = e.what();
      }
    }
    apply_settings(*br, *o, n);
    // Numbers in order of the ports, newest first in the flood order.
    for (size_t i = 0; i < br->ports.size(); i++)
      br->ports[i]->port_no = static_cast<uint16_t>(i + 1);
    br->flood_order.clear();
    for (auto it = br->ports.rbegin(); it != br->ports.rend(); ++it) {
      (*it)->position = static_cast<uint16_t>(br->flood_order.size());
      br->flood_order.push_back(it->get());
    }
  }
  sys->size_workers();
  sys->start(dp);
  dp.add_vlans();           // VLANs on a new bridge
  br_netfilter_attach(dp);  // the first bridge may have arrived (src/bridge/br_netfilter.cc)
  return err;
}

}  // namespace sluice::bridge
