// Bonding commands (what /proc/net/bonding/BOND shows):
//
//   show bond [BOND]   mode, policy, active member, monitor settings; per
//                      member: link, state, failure count, last change
//
// JSON shape: design/CLI.md (show bond → {BOND: {mode, active, members:
// {M: {link, state, …}}, …}}); fields are only added.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
      {"members", std::move(members)},
  };
  std::string& o = *text;
  o += b.dev->name + ": mode " + mode_name(b.mode);
  if (hashes) o += ", xmit_hash_policy " + std::string(policy_name(b.policy));
  o += ", mac " + mac_to_string(b.dev->mac) + ", carrier " +
       (b.dev->oper_up.load() ? "on" : "off") + "\n";
  o += "  miimon " + std::to_string(b.miimon_ms) + " ms, updelay " +
       std::to_string(b.updelay * int(b.miimon_ms)) + " ms, downdelay " +
       std::to_string(b.downdelay * int(b.miimon_ms)) + " ms\n";
  o += "  active " + (b.curr_active ? b.curr_active->dev->name : std::string("-")) + ", primary " +
       (b.primary ? b.primary->dev->name : std::string("-")) + ", failovers " +
       std::to_string(b.ctr.failovers) + ", gratuitous ARP " + std::to_string(b.ctr.garp_sent) +
       ", NA " + std::to_string(b.ctr.na_sent) + ", learning frames " +
       std::to_string(b.ctr.learning_sent) + "\n";
  o += t.str(2);
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

const CommandRegistrar kCommands{
    {{"show", "bond"},
     "show bond [BOND]",
     "bonds: mode, policy, active member; per member link, state, failures, last change",
     show_bond},
};

}  // namespace
}  // namespace sluice::bond
