// Bonding's part of a live reload (Feature::reload, src/control/reload.cc).
//
// Live: new bonds, built as at start (bond_create + bond_enslave: they take
// their members' rx_handler slots and, with fail_over_mac none, give them
// the bond's MAC; MII, ARP monitor and LACP state start fresh), and removed
// bonds (bond_release of every member: the rx_handler slot is released, the
// member's own MAC is given back, its counters stop folding into the bond;
// then the bond device is unregistered, with what L3 held on it). Bonds
// that stay keep their state (LACP, active member, counters).
//
// Refused with the reason (a restart applies it): a bond changed in place
// (members, mode or any other key), and a new bond's member that is still a
// bridge port when the bond is built (bridges apply after bonds).
//
// Bond numbers and member gidx are never reused (BondSys::by_idx): an RLB
// event or a slow-protocol frame a worker queued for a removed bond names
// nothing afterwards (drain_slow finds members by device).
#include <algorithm>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "bond/bond.hh"
#include "bond/config.hh"
#include "bridge/config.hh"
#include "core/dataplane.hh"
#include "core/format.hh"

namespace sluice::bond {

namespace {

bool same_arp(const config::BondArpMonitor& a, const config::BondArpMonitor& b) {
  return a.interval_ms == b.interval_ms && a.targets == b.targets && a.validate == b.validate &&
         a.all_targets == b.all_targets && a.missed_max == b.missed_max;
}

bool same_bond(const config::Bond& a, const config::Bond& b) {
  return a.name == b.name && a.mode == b.mode && a.members == b.members && a.primary == b.primary &&
         a.primary_reselect == b.primary_reselect && a.xmit_hash_policy == b.xmit_hash_policy &&
         a.miimon_ms == b.miimon_ms && a.updelay_ms == b.updelay_ms &&
         a.downdelay_ms == b.downdelay_ms && a.lacp_rate == b.lacp_rate &&
         a.lacp_active == b.lacp_active && a.ad_select == b.ad_select &&
         a.ad_actor_sys_prio == b.ad_actor_sys_prio && a.ad_user_port_key == b.ad_user_port_key &&
         a.fail_over_mac == b.fail_over_mac && same_arp(a.arp_monitor, b.arp_monitor) &&
         a.mac == b.mac && a.tlb_dynamic_lb == b.tlb_dynamic_lb &&
         a.packets_per_slave == b.packets_per_slave && a.num_grat_arp == b.num_grat_arp;
}

const config::Bond* named(const std::vector<config::Bond>& v, const std::string& name) {
  for (auto& b : v)
    if (b.name == name) return &b;
  return nullptr;
}

bool is_member(const config::Bond& b, const std::string& dev) {
  return std::find(b.members.begin(), b.members.end(), dev) != b.members.end();
}

// bond_release of every member, then the bond device goes.
void remove_bond(Dataplane& dp, BondSys& sys, Bond* b) {
  const std::string name = b->dev->name;
  for (auto& m : b->members) {
    Device& d = *m->dev;
    if (d.rx_handler_ctx.load() == m.get()) dp.net.clear_rx_handler(d);
    d.master.store(kNoDev);
    if (!rte_is_same_ether_addr(&d.mac, &m->perm_mac)) program_mac(d, m->perm_mac);
    std::erase(sys.all_members, m.get());
    spdlog::info("bond {}: member {} released (its own MAC {} back)", name, d.name,
                 mac_to_string(m->perm_mac));
  }
  b->curr_active = nullptr;
  b->primary = nullptr;
  b->arp.current_arp_slave = nullptr;
  dp.unregister_device(*b->dev);  // folds, L3's state on it; waits out the readers
  for (auto it = sys.bonds.begin(); it != sys.bonds.end(); ++it)
    if (it->get() == b) {
      sys.retired.push_back(std::move(*it));
      sys.bonds.erase(it);
      break;
    }
  spdlog::info("bond {}: removed", name);
}

}  // namespace

std::string reload(Dataplane& dp, const config::Topology& next, bool apply) {
  const auto& olds = dp.topo.get<Config>().bonds;
  const auto& news = next.get<Config>().bonds;
  auto at = [&](const config::Mark& m) { return config::where(next.file, m); };
  if (!apply) {
    for (auto& n : news) {
      const config::Bond* o = named(olds, n.name);
      if (o != nullptr) {
        if (!same_bond(*o, n))
          return at(n.mark) + "bond '" + n.name +
                 "' changed: changing a bond in place needs a restart of sluiced (remove it "
                 "in one reload and add it in the next to start it afresh)";
        continue;
      }
      if (dp.net.find(n.name) != nullptr)
        return at(n.mark) + "bond '" + n.name + "': a device of that name still runs";
      for (size_t i = 0; i < n.members.size(); i++) {
        const std::string w =
            at(n.member_at[i]) + "bond '" + n.name + "': member '" + n.members[i] + "' ";
        Device* d = dp.net.find(n.members[i]);
        if (d == nullptr) return w + "is not a running device (a new bond's members must run)";
        if (d->kind == DevKind::bond) return w + "is a bond";
        bool freed = false;  // a member of a bond this reload removes
        for (auto& ob : olds) freed |= is_member(ob, d->name) && named(news, ob.name) == nullptr;
        if (!freed) {
          for (auto& br : dp.topo.get<bridge::Config>().bridges)
            if (std::find(br.ports.begin(), br.ports.end(), d->name) != br.ports.end())
              return w + "is a port of bridge '" + br.name +
                     "' until this reload applies (bonds are built before bridges): take it "
                     "off the bridge in one reload, add the bond in the next";
          if (d->master.load() != kNoDev) return w + "already has a master (EBUSY)";
          if (d->rx_handler.load() != nullptr)
            return w + "already has an rx_handler (EBUSY, owner " +
                   std::string(d->rx_handler_owner ? d->rx_handler_owner : "?") + ")";
        }
      }
    }
    return "";
  }

  // Workers are paused. Removed bonds first (their members may join a new one).
  BondSys* sys = dp.find_feature<BondSys>();
  if (sys != nullptr) {
    std::vector<Bond*> gone;
    for (auto& b : sys->bonds)
      if (named(news, b->dev->name) == nullptr) gone.push_back(b.get());
    for (Bond* b : gone) remove_bond(dp, *sys, b);
  }
  std::string err;
  for (auto& n : news) {
    if (named(olds, n.name) != nullptr) continue;
    if (sys == nullptr) sys = &dp.feature<BondSys>();
    sys->init_workers();
    if (sys->pool == nullptr && !dp.pools.empty()) sys->pool = dp.pools.begin()->second;
    for (auto& w : dp.workers) w->enable_inject();  // peer notifications
    try {
      Bond* b = build_bond(dp, *sys, n, next);
      if (sys->clock_started()) {
        std::vector<Member*> ms;
        for (auto& m : b->members) ms.push_back(m.get());
        sys->size_workers();
        sys->stamp_members(ms, sys->now_ms());
      }
    } catch (const std::exception& e) {
      if (err.empty()) err = e.what();
    }
  }
  if (sys == nullptr) return err;
  sys->size_workers();
  sys->start(dp);
  dp.add_vlans();  // VLANs on a new bond
  return err;
}

}  // namespace sluice::bond
