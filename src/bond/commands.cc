// Bonding commands (what /proc/net/bonding/BOND shows):
//
//   show bond [BOND]   mode, policy, active member, monitor settings; per
//                      member: link, state, failure count, last change
//   show lacp [BOND]   802.3ad: per member actor and partner information,
//                      decoded state bits, aggregator, rx/mux/periodic machine
//                      states, PDUs sent/received/illegal/unknown
//
// JSON shape: design/CLI.md (show bond → {BOND: {mode, active, members:
// {M: {link, state, …}}, …}}); fields are only added.
#include <atomic>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <rte_telemetry.h>

#include "bond/bond.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/format.hh"

namespace sluice::bond {
namespace {

using nlohmann::json;

CmdResult usage(const char* u) {
  return CmdResult::error(std::string("usage: ") + u);
}

std::vector<Bond*> selected(Dataplane& dp, const std::vector<std::string>& args, CmdResult* err,
                            const char* u) {
  std::vector<Bond*> r;
  if (args.size() > 1) {
    *err = usage(u);
    return r;
  }
  BondSys* sys = dp.find_feature<BondSys>();
  if (!args.empty()) {
    Bond* b = sys != nullptr ? sys->find(args[0]) : nullptr;
    if (b == nullptr) *err = CmdResult::error("no bond '" + args[0] + "'");
    if (b != nullptr) r.push_back(b);
    return r;
  }
  if (sys != nullptr)
    for (auto& b : sys->bonds) r.push_back(b.get());
  return r;
}

const char* member_state(const Member& m) {
  return m.backup ? "backup" : "active";
}

std::string ago(uint64_t now, uint64_t then) {
  if (then == 0 || then > now) return "-";
  return std::to_string((now - then) / 1000) + "." + std::to_string((now - then) % 1000 / 100) +
         " s ago";
}

std::string ip4(uint32_t be) {
  const auto* p = reinterpret_cast<const uint8_t*>(&be);
  return std::to_string(p[0]) + "." + std::to_string(p[1]) + "." + std::to_string(p[2]) + "." +
         std::to_string(p[3]);
}

// balance-alb: each member's current MAC (the swap on failover), the RLB
// client table (rx_hashtbl) and the update counters.
void alb_json(BondSys& sys, Bond& b, json& j, std::string* text) {
  const Alb& a = *b.alb;
  for (auto& m : b.members) j["members"][m->dev->name]["mac"] = mac_to_string(a.mac[m->pos]);
  json rlb = json::array();
  TextTable t({{"CLIENT"}, {"MAC"}, {"MEMBER"}, {"BOND-IP"}, {"VLAN", TextTable::right}, {"NTT"}});
  for (unsigned i = 0; i < kRlbEntries; i++) {
    const RlbClient& c = a.client[i];
    if (!c.assigned) continue;
    const std::string member = c.pos < b.members.size() ? b.members[c.pos]->dev->name : "";
    rlb.push_back({{"ip", ip4(c.ip_dst)},
                   {"mac", mac_to_string(c.mac_dst)},
                   {"member", c.pos < b.members.size() ? json(member) : json(nullptr)},
                   {"member_mac",
                    c.pos < b.members.size() ? json(mac_to_string(a.mac[c.pos])) : json(nullptr)},
                   {"bond_ip", ip4(c.ip_src)},
                   {"vlan", c.vlan},
                   {"ntt", c.ntt},
                   {"index", i}});
    t.add({ip4(c.ip_dst), mac_to_string(c.mac_dst), member.empty() ? "-" : member, ip4(c.ip_src),
           std::to_string(c.vlan), c.ntt ? "yes" : "no"});
  }
  uint64_t lost = 0;
  for (auto& ws : sys.workers) lost += ws->rlb_lost;
  j["rlb"] = std::move(rlb);
  j["alb"] = {{"updates_sent", a.updates_sent},
              {"learning_sent", a.learning_sent},
              {"events", a.events},
              {"events_lost", lost},
              {"rebalances", a.rebalances},
              {"clients_moved", a.moved},
              {"update_delay_ticks", a.update_delay},
              {"update_retry", a.update_retry},
              {"rx_ntt", a.rx_ntt}};
  *text += "  rlb: " + std::to_string(j["rlb"].size()) + " client(s), " +
           std::to_string(a.updates_sent) + " ARP updates sent, " +
           std::to_string(a.learning_sent) + " learning frames\n";
  if (!j["rlb"].empty()) *text += t.str(4);
}

json bond_json(BondSys& sys, Bond& b, std::string* text) {
  const uint64_t now = sys.now_ms();
  json members = json::object();
  TextTable t({{"MEMBER"},
               {"LINK"},
               {"STATE"},
               {"RX"},
               {"FAILURES", TextTable::right},
               {"LAST-CHANGE"},
               {"PERM-MAC"}});
  for (auto& m : b.members) {
    const MemberCounters c = sys.member_counters(*m);
    json j = {
        {"link", link_state_name(m->link)},
        {"state", member_state(*m)},
        {"inactive", m->inactive.load(std::memory_order_relaxed)},
        {"link_failure_count", m->link_failure_count},
        {"last_change_ms", m->last_change_ms == 0 || m->last_change_ms > now
                               ? json(nullptr)
                               : json(now - m->last_change_ms)},
        {"perm_mac", mac_to_string(m->perm_mac)},
        {"mac", mac_to_string(m->dev->mac)},
        {"speed_mbps", m->speed_mbps},
        {"carrier", m->dev->up()},
        {"delay", m->delay},
        {"lacpdu_illegal_rx", c.lacpdu_illegal_rx},
        {"lacpdu_unknown_rx", c.lacpdu_unknown_rx},
        {"slow_ring_full", c.slow_ring_full},
        {"arp_validated", c.arp_validated},
        {"arp_not_validated", c.arp_not_validated},
        {"last_rx_ms", b.arp.interval_ms != 0 && c.last_rx_ms != 0 && c.last_rx_ms <= now
                           ? json(now - c.last_rx_ms)
                           : json(nullptr)},
    };
    members[m->dev->name] = std::move(j);
    t.add({m->dev->name, link_state_name(m->link), member_state(*m),
           m->inactive.load(std::memory_order_relaxed) ? "exact" : "bond",
           std::to_string(m->link_failure_count), ago(now, m->last_change_ms),
           mac_to_string(m->perm_mac)});
  }
  const bool hashes = b.has_usable_arr();
  json usable = json::array();
  for (uint8_t pos : b.usable) usable.push_back(b.members[pos]->dev->name);
  json j = {
      {"name", b.dev->name},
      {"mode", mode_name(b.mode)},
      {"active", b.curr_active != nullptr ? json(b.curr_active->dev->name) : json(nullptr)},
      {"primary", b.primary != nullptr ? json(b.primary->dev->name) : json(nullptr)},
      {"xmit_hash_policy", hashes ? json(policy_name(b.policy)) : json(nullptr)},
      {"mac", mac_to_string(b.dev->mac)},
      {"carrier", b.dev->oper_up.load()},
      {"miimon_ms", b.miimon_ms},
      {"updelay_ms", b.updelay * int(b.miimon_ms)},
      {"downdelay_ms", b.downdelay * int(b.miimon_ms)},
      {"usable", std::move(usable)},
      {"failovers", b.ctr.failovers},
      {"garp_sent", b.ctr.garp_sent},
      {"na_sent", b.ctr.na_sent},
      {"learning_sent", b.ctr.learning_sent},
      {"inject_failed", b.ctr.inject_failed},
      {"arp_monitor", b.arp.interval_ms == 0 ? json(nullptr)
                                             : json{{"interval_ms", b.arp.interval_ms},
                                                    {"validate", b.arp.validate == 3   ? "all"
                                                                 : b.arp.validate == 2 ? "backup"
                                                                 : b.arp.validate == 1 ? "active"
                                                                                       : "none"},
                                                    {"missed_max", b.arp.missed_max},
                                                    {"probes_sent", b.arp.probes_sent},
                                                    {"current_arp_slave",
                                                     b.arp.current_arp_slave != nullptr
                                                         ? json(b.arp.current_arp_slave->dev->name)
                                                         : json(nullptr)}}},
      {"members", std::move(members)},
  };
  const bool tlb = b.mode == Mode::balance_tlb || b.mode == Mode::balance_alb;
  unsigned buckets[kMaxMembers] = {};
  if (tlb) {
    for (uint8_t pos : b.tlb_map)
      if (pos != kNoMember) buckets[pos]++;
    json per = json::object();
    for (auto& m : b.members) per[m->dev->name] = buckets[m->pos];
    j["tlb"] = {{"dynamic_lb", b.tlb_dynamic_lb},
                {"rebalance_interval_ms", kTlbRebalanceMs},
                {"rebalances", b.tlb_rebalances},
                {"buckets", std::move(per)}};
  } else {
    j["tlb"] = nullptr;
  }
  j["rlb"] = nullptr;
  std::string& o = *text;
  o += b.dev->name + ": mode " + mode_name(b.mode);
  if (hashes) o += ", xmit_hash_policy " + std::string(policy_name(b.policy));
  o += ", mac " + mac_to_string(b.dev->mac) + ", carrier " +
       (b.dev->oper_up.load() ? "on" : "off") + "\n";
  if (b.arp.interval_ms != 0)
    o += "  arp_monitor every " + std::to_string(b.arp.interval_ms) + " ms, " +
         std::to_string(b.arp.targets.size()) + " target(s), " + std::to_string(b.arp.probes_sent) +
         " probes sent\n";
  o += "  miimon " + std::to_string(b.miimon_ms) + " ms, updelay " +
       std::to_string(b.updelay * int(b.miimon_ms)) + " ms, downdelay " +
       std::to_string(b.downdelay * int(b.miimon_ms)) + " ms\n";
  o += "  active " + (b.curr_active ? b.curr_active->dev->name : std::string("-")) + ", primary " +
       (b.primary ? b.primary->dev->name : std::string("-")) + ", failovers " +
       std::to_string(b.ctr.failovers) + ", gratuitous ARP " + std::to_string(b.ctr.garp_sent) +
       ", NA " + std::to_string(b.ctr.na_sent) + ", learning frames " +
       std::to_string(b.ctr.learning_sent) + "\n";
  if (tlb) {
    o += "  tlb_dynamic_lb " + std::string(b.tlb_dynamic_lb ? "1" : "0") + ", rebalances " +
         std::to_string(b.tlb_rebalances) + ", buckets";
    for (auto& m : b.members) o += " " + m->dev->name + ":" + std::to_string(buckets[m->pos]);
    o += "\n";
  }
  o += t.str(2);
  if (b.alb != nullptr) alb_json(sys, b, j, text);
  return j;
}

CmdResult show_bond(Dataplane& dp, const std::vector<std::string>& args) {
  CmdResult r;
  auto bonds = selected(dp, args, &r, "show bond [BOND]");
  if (r.status != 0) return r;
  r.json = json::object();
  if (bonds.empty()) {
    r.text = "no bonds\n";
    return r;
  }
  BondSys& sys = dp.feature<BondSys>();
  for (Bond* b : bonds) r.json[b->dev->name] = bond_json(sys, *b, &r.text);
  return r;
}

json state_bits(uint8_t s) {
  static const char* const names[] = {"activity",        "timeout",    "aggregation",
                                      "synchronization", "collecting", "distributing",
                                      "defaulted",       "expired"};
  json a = json::array();
  for (unsigned i = 0; i < 8; i++)
    if (s & (1u << i)) a.push_back(names[i]);
  return a;
}

std::string state_text(uint8_t s) {
  static const char letters[] = "ATGSCDFE";  // activity, timeout, aggregation, sync, …
  std::string r;
  for (unsigned i = 0; i < 8; i++) r += (s & (1u << i)) ? letters[i] : '-';
  return r;
}

json params_json(const PortParams& p) {
  return {{"system", mac_to_string(p.system)},
          {"system_priority", p.system_priority},
          {"key", p.key},
          {"port", p.port_number},
          {"port_priority", p.port_priority},
          {"state", state_bits(p.port_state)},
          {"state_value", p.port_state}};
}

// The mux state as CLI.md spells it ("distributing" for Linux's coupled
// COLLECTING_DISTRIBUTING); "mux_state" has Linux's name.
const char* mux_short(MuxState s) {
  return s == MuxState::collecting_distributing ? "distributing" : mux_state_name(s);
}

json lacp_json(BondSys& sys, Bond& b, std::string* text) {
  json j = json::object();
  const AdAggregator* active = sys.ad_active_agg(b);
  TextTable t({{"MEMBER"},
               {"AGG", TextTable::right},
               {"ACTOR-KEY", TextTable::right},
               {"ACTOR"},
               {"PARTNER-SYSTEM"},
               {"P-KEY", TextTable::right},
               {"P-PORT", TextTable::right},
               {"PARTNER"},
               {"RX"},
               {"MUX"},
               {"PERIODIC"},
               {"PDUS-RX", TextTable::right},
               {"PDUS-TX", TextTable::right}});
  for (auto& m : b.members) {
    const AdPort& p = m->ad;
    const MemberCounters c = sys.member_counters(*m);
    PortParams actor;
    actor.system = p.actor_system;
    actor.system_priority = p.actor_system_priority;
    actor.key = p.actor_oper_key;
    actor.port_number = p.actor_port_number;
    actor.port_priority = p.actor_port_priority;
    actor.port_state = p.actor_oper_state;
    j[m->dev->name] = {
        {"actor", params_json(actor)},
        {"partner", params_json(p.partner_oper)},
        {"aggregator", p.aggregator != nullptr ? json(p.aggregator->id) : json(nullptr)},
        {"aggregator_active", p.aggregator != nullptr && p.aggregator == active},
        {"selected", (p.sm_vars & kPortSelected) != 0},
        {"rx", rx_state_name(p.rx)},
        {"mux", mux_short(p.mux)},
        {"mux_state", mux_state_name(p.mux)},
        {"periodic", periodic_state_name(p.periodic)},
        {"churn",
         {{"actor", churn_state_name(p.churn_actor)},
          {"partner", churn_state_name(p.churn_partner)},
          {"actor_count", p.churn_actor_count},
          {"partner_count", p.churn_partner_count}}},
        {"pdus",
         {{"lacpdu_rx", p.ctr.lacpdu_rx},
          {"lacpdu_tx", p.ctr.lacpdu_tx},
          {"lacpdu_illegal_rx", c.lacpdu_illegal_rx},
          {"lacpdu_unknown_rx", c.lacpdu_unknown_rx},
          {"marker_rx", p.ctr.marker_rx},
          {"marker_tx", p.ctr.marker_tx},
          {"marker_resp_rx", p.ctr.marker_resp_rx},
          {"marker_unknown_rx", p.ctr.marker_unknown_rx},
          {"loopback_rx", p.ctr.loopback_rx},
          {"ring_full", c.slow_ring_full},
          {"tx_failed", p.ctr.tx_failed}}},
    };
    t.add({m->dev->name, p.aggregator ? std::to_string(p.aggregator->id) : "-",
           std::to_string(p.actor_oper_key), state_text(p.actor_oper_state),
           mac_to_string(p.partner_oper.system), std::to_string(p.partner_oper.key),
           std::to_string(p.partner_oper.port_number), state_text(p.partner_oper.port_state),
           rx_state_name(p.rx), mux_state_name(p.mux), periodic_state_name(p.periodic),
           std::to_string(p.ctr.lacpdu_rx), std::to_string(p.ctr.lacpdu_tx)});
  }
  *text += b.dev->name + ": 802.3ad, lacp_rate " + (b.ad.lacp_fast ? "fast" : "slow") +
           ", lacp_active " + (b.ad.lacp_active ? "on" : "off") + ", ad_select " +
           (b.ad.select == AdSelect::count       ? "count"
            : b.ad.select == AdSelect::bandwidth ? "bandwidth"
                                                 : "stable") +
           ", system " + std::to_string(b.ad.system_priority) + "," + mac_to_string(b.ad.system) +
           ", active aggregator " + (active ? std::to_string(active->id) : std::string("none")) +
           "\n";
  *text +=
      "  state bits: A activity, T short timeout, G aggregation, S synchronization, "
      "C collecting, D distributing, F defaulted, E expired\n";
  *text += t.str(2);
  return j;
}

CmdResult show_lacp(Dataplane& dp, const std::vector<std::string>& args) {
  CmdResult r;
  auto bonds = selected(dp, args, &r, "show lacp [BOND]");
  if (r.status != 0) return r;
  r.json = json::object();
  BondSys* sys = dp.find_feature<BondSys>();
  for (Bond* b : bonds) {
    if (b->mode != Mode::ieee8023ad) {
      if (!args.empty()) return CmdResult::error("bond '" + args[0] + "' is not in mode 802.3ad");
      continue;
    }
    r.json[b->dev->name] = lacp_json(*sys, *b, &r.text);
  }
  if (r.text.empty()) r.text = "no 802.3ad bonds\n";
  return r;
}

const CommandRegistrar kCommands{
    {{"show", "bond"},
     "show bond [BOND]",
     "bonds: mode, policy, active member; per member link, state, failures, last change",
     show_bond},
    {{"show", "lacp"},
     "show lacp [BOND]",
     "802.3ad: per member actor and partner, aggregator, rx/mux/periodic states, PDU counts",
     show_lacp},
};

}  // namespace
// ---- show devices, Prometheus, telemetry -------------------------------------------------------

namespace {

std::atomic<BondSys*> g_telemetry_sys{nullptr};

int telemetry_bonds(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  BondSys* sys = g_telemetry_sys.load();
  if (sys == nullptr) return 0;
  for (auto& b : sys->bonds) {
    rte_tel_data* x = rte_tel_data_alloc();
    rte_tel_data_start_dict(x);
    rte_tel_data_add_dict_string(x, "mode", mode_name(b->mode));
    rte_tel_data_add_dict_string(x, "active",
                                 b->curr_active ? b->curr_active->dev->name.c_str() : "");
    rte_tel_data_add_dict_u64(x, "failovers", b->ctr.failovers);
    rte_tel_data_add_dict_u64(x, "carrier", b->dev->oper_up.load() ? 1 : 0);
    for (auto& m : b->members) {  // one level of containers: "member.key"
      const std::string n = m->dev->name + ".";
      rte_tel_data_add_dict_string(x, (n + "link").c_str(), link_state_name(m->link));
      rte_tel_data_add_dict_string(x, (n + "state").c_str(), member_state(*m));
      rte_tel_data_add_dict_u64(x, (n + "link_failure_count").c_str(), m->link_failure_count);
      if (b->mode == Mode::ieee8023ad) {
        rte_tel_data_add_dict_string(x, (n + "mux").c_str(), mux_state_name(m->ad.mux));
        rte_tel_data_add_dict_u64(x, (n + "lacpdu_rx").c_str(), m->ad.ctr.lacpdu_rx);
        rte_tel_data_add_dict_u64(x, (n + "lacpdu_tx").c_str(), m->ad.ctr.lacpdu_tx);
      }
    }
    rte_tel_data_add_dict_container(d, b->dev->name.c_str(), x, 0);
  }
  return 0;
}

void metrics(BondSys& sys, std::string& out) {
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto member_label = [](const Bond& b, const Member& m) {
    return "{bond=\"" + b.dev->name + "\",member=\"" + m.dev->name + "\"}";
  };
  family("sluice_bond_member_link_up", "gauge", "Bond member link state by the monitor (1 up).");
  for (auto& b : sys.bonds)
    for (auto& m : b->members)
      out += "sluice_bond_member_link_up" + member_label(*b, *m) +
             (m->link == LinkState::up ? " 1\n" : " 0\n");
  family("sluice_bond_member_active", "gauge",
         "Bond member receives for the bond and may send (1 active, 0 backup/inactive).");
  for (auto& b : sys.bonds)
    for (auto& m : b->members)
      out += "sluice_bond_member_active" + member_label(*b, *m) +
             (!m->backup && !m->inactive.load() ? " 1\n" : " 0\n");
  family("sluice_bond_member_link_failures_total", "counter", "Bond member link failures.");
  for (auto& b : sys.bonds)
    for (auto& m : b->members)
      out += "sluice_bond_member_link_failures_total" + member_label(*b, *m) + " " +
             std::to_string(m->link_failure_count) + "\n";
  family("sluice_bond_failovers_total", "counter", "Changes of a bond's active member.");
  for (auto& b : sys.bonds)
    out += "sluice_bond_failovers_total{bond=\"" + b->dev->name + "\"} " +
           std::to_string(b->ctr.failovers) + "\n";
  family("sluice_lacp_pdus_total", "counter", "LACPDUs by bond member and direction.");
  for (auto& b : sys.bonds) {
    if (b->mode != Mode::ieee8023ad) continue;
    for (auto& m : b->members) {
      std::string l = "{bond=\"" + b->dev->name + "\",member=\"" + m->dev->name + "\",dir=\"";
      out += "sluice_lacp_pdus_total" + l + "rx\"} " + std::to_string(m->ad.ctr.lacpdu_rx) + "\n";
      out += "sluice_lacp_pdus_total" + l + "tx\"} " + std::to_string(m->ad.ctr.lacpdu_tx) + "\n";
    }
  }
  bool alb = false;
  for (auto& b : sys.bonds) alb = alb || b->alb != nullptr;
  if (!alb) return;
  family("sluice_bond_rlb_clients", "gauge",
         "balance-alb: RLB clients by the member they send to.");
  for (auto& b : sys.bonds) {
    if (b->alb == nullptr) continue;
    unsigned per[kMaxMembers] = {};
    for (const RlbClient& c : b->alb->client)
      if (c.assigned && c.pos < b->members.size()) per[c.pos]++;
    for (auto& m : b->members)
      out += "sluice_bond_rlb_clients" + member_label(*b, *m) + " " + std::to_string(per[m->pos]) +
             "\n";
  }
  family("sluice_bond_rlb_updates_total", "counter",
         "balance-alb: ARP replies sent to tell clients their member's MAC.");
  for (auto& b : sys.bonds)
    if (b->alb != nullptr)
      out += "sluice_bond_rlb_updates_total{bond=\"" + b->dev->name + "\"} " +
             std::to_string(b->alb->updates_sent) + "\n";
}

}  // namespace

void register_observers(Dataplane& dp, BondSys& sys) {
  BondSys* s = &sys;
  dp.add_device_info([s](const Device& d, Dataplane::DeviceInfo& info) {
    if (Member* m = s->find_member(d.index)) {
      info.emplace_back("bond_link", link_state_name(m->link));
      info.emplace_back("bond_state", member_state(*m));
      if (m->bond->mode == Mode::ieee8023ad) info.emplace_back("lacp_mux", mux_short(m->ad.mux));
    } else if (Bond* b = d.kind == DevKind::bond ? s->find(d.name) : nullptr) {
      info.emplace_back("bond_mode", mode_name(b->mode));
      info.emplace_back("bond_active", b->curr_active ? b->curr_active->dev->name : "-");
    }
  });
  dp.add_metrics([s](std::string& out) { metrics(*s, out); });
  g_telemetry_sys.store(s);
  rte_telemetry_register_cmd("/sluice/bond", telemetry_bonds,
                             "Bonds of sluiced: mode, active member, member link and state. "
                             "Takes no parameters");
}

void unregister_observers(BondSys& sys) {
  BondSys* expected = &sys;
  g_telemetry_sys.compare_exchange_strong(expected, nullptr);
}

}  // namespace sluice::bond
