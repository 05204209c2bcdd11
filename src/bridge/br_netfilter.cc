// br_netfilter (net/bridge/br_netfilter_hooks.c) as far as sluice goes:
// br_nf_forward_arp with bridge-nf-call-arptables = 1, its default. An
// entry of the bridge/forward point at priority brnf (0): the ARP frames
// among the bridge's forwarded copies run the arp/forward points (in, out =
// the bridge ports, NF_HOOK(NFPROTO_ARP, NF_ARP_FORWARD, …)). What they
// drop, queue or steal leaves the bridge's walk; the rest goes on with the
// entries after brnf. A frame queued at arp/forward and accepted later goes
// on as br_nf_forward_finish would: ok_forward (post_routing, then out).
// Spec: ../shared/spec/linux-rx.md §4.7.
//
// Only when arp/forward has entries once rule lists and plugins are in
// (br_netfilter_attach): otherwise bridge/forward stays empty, one load
// per burst. The entry is the daemon's own (hooks::Owner::internal, not in
// `show hooks`) and runs after the entries of its priority, as if
// registered before them.
#include <spdlog/spdlog.h>

#include "bridge/bridge.hh"
#include "core/dataplane.hh"
#include "core/meta.hh"
#include "hooks/hooks.hh"

namespace sluice::bridge {

namespace {

constexpr uint16_t kEthArp = 0x0806;

void br_nf_forward_arp(Worker& w, const hooks::State& st, void* priv, rte_mbuf** pkts, uint16_t n,
                       uint32_t* verdicts) {
  auto& reg = *static_cast<hooks::Registry*>(priv);
  rte_mbuf* arp[kBurst];
  uint16_t pos[kBurst], kept[kBurst];
  uint16_t na = 0;
  for (uint16_t i = 0; i < n; i++) {
    verdicts[i] = SLUICE_ACCEPT;
    if (meta(pkts[i]).protocol == kEthArp) {
      pos[na] = i;
      arp[na++] = pkts[i];
    }
  }
  if (na == 0 || reg.list(SLUICE_ARP_FORWARD) == nullptr) return;
  const hooks::State arp_st{SLUICE_ARP_FORWARD, st.worker, st.in, st.out, nullptr};
  for (uint16_t i = 0; i < na; i++) verdicts[pos[i]] = SLUICE_STOLEN;
  const uint16_t k = reg.run(w, arp_st, arp, na, arp_st.in, kept);
  for (uint16_t i = 0; i < k; i++) {
    pkts[pos[kept[i]]] = arp[i];  // an entry may have replaced the mbuf (copy-on-write)
    verdicts[pos[kept[i]]] = SLUICE_ACCEPT;
  }
}

}  // namespace

bool br_netfilter_attach(Dataplane& dp) {
  BridgeSys* sys = dp.find_feature<BridgeSys>();
  if (sys == nullptr) return false;
  hooks::Registry& reg = hooks::registry(dp);
  if (reg.list(SLUICE_ARP_FORWARD) == nullptr) {
    if (sys->brnf_entry != 0) {
      reg.remove(sys->brnf_entry);
      sys->brnf_entry = 0;
      spdlog::info("bridge: br_nf_forward_arp left bridge/forward (arp/forward is empty)");
    }
    return false;
  }
  if (sys->brnf_entry != 0) return true;
  sys->brnf_entry = reg.add(SLUICE_BRIDGE_FORWARD, kPriBrnf, "br_nf_forward_arp", br_nf_forward_arp,
                            &reg, hooks::Owner::internal, hooks::Registry::Place::after_equals);
  if (sys->brnf_entry == 0) return false;
  reg.set_okfn(SLUICE_ARP_FORWARD, ok_forward, nullptr);
  spdlog::info("bridge: br_nf_forward_arp at bridge/forward: forwarded ARP frames run arp/forward");
  return true;
}

}  // namespace sluice::bridge
