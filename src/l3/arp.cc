// arp_rcv / arp_process (net/ipv4/arp.c) on the worker: requests for any of
// our addresses are answered here (arp_ignore = 0: any local address, on any
// device), and what the packet teaches about its sender goes to the control
// thread as a NeighEvent (neigh_event_ns for requests to us; replies and
// gratuitous ARP update an existing entry only, arp_accept = 0). On the
// control thread: arp_send for the probes of the neighbour table (through
// [arp/out] when it has hooks).
#include <cstring>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "core/dataplane.hh"
#include "core/netif.hh"
#include "hooks/hooks.hh"
#include "l3/datapath.hh"
#include "l3/l3.hh"

namespace sluice::l3 {

namespace {

// arp_process for packets that passed arp/in, all on device dev.
void arp_process(Worker& w, L3& l3, uint16_t dev, rte_mbuf** pkts, uint16_t n) {
  WorkerL3& ws = l3.ws(w.id);
  const Snapshot* s = l3.snap();
  Device* d = w.net.dev(dev);
  rte_mbuf* replies[kBurst];
  uint16_t nr = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    PktType pt = pkt_type(m);
    if (pt == PktType::otherhost || pt == PktType::loopback || d->kind == DevKind::punt) {
      // consumed silently (a punt TAP's kernel side has ARP off; sluice resolves)
      w.free_later(m);
      continue;
    }
    if (m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) {
      w.drop(m, dev, DropReason::arp_invalid);
      continue;
    }
    auto* arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, sizeof(rte_ether_hdr));
    if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
        arp->arp_protocol != rte_cpu_to_be_16(kEthPIp) || arp->arp_hlen != 6 ||
        arp->arp_plen != 4) {
      w.drop(m, dev, DropReason::arp_invalid);
      continue;
    }
    uint16_t op = rte_be_to_cpu_16(arp->arp_opcode);
    uint32_t sip = rte_be_to_cpu_32(arp->arp_data.arp_sip);
    uint32_t tip = rte_be_to_cpu_32(arp->arp_data.arp_tip);
    if ((op != RTE_ARP_OP_REQUEST && op != RTE_ARP_OP_REPLY) || (tip >> 28) == 14 ||
        (tip >> 24) == 127 || (sip >> 28) == 14) {
      w.free_later(m);
      continue;
    }
    const LocalSlot* ls = s->find_local(tip);
    bool for_us = ls != nullptr && ls->type == RtType::local;
    if (op == RTE_ARP_OP_REQUEST && for_us) {
      if (sip != 0) {  // not a duplicate-address probe: learn the sender
        NeighEvent ev{sip, dev, kEvRequestForUs, 0, {}, 0};
        std::memcpy(ev.mac, arp->arp_data.arp_sha.addr_bytes, 6);
        rte_ring_enqueue_elem(ws.events, &ev, sizeof ev);
      }
      // The reply, in place (in a private copy when another handler shares the frame).
      if (rte_mbuf* c = unshare(w, m); c != m) {
        if (c == nullptr) {
          w.drops[dev][static_cast<unsigned>(DropReason::nomem)]++;
          continue;
        }
        m = c;
        arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, sizeof(rte_ether_hdr));
      }
      if (traced(m)) [[unlikely]] {  // the request is delivered; its reply is traced on its own
        trace_fate(w, m, TraceFate::delivered, dev, "arp_process", "request for a local address");
        trace_fork(w, m, m);
        trace_rec(w, m, "arp_process", dev, "ARP reply");
      }
      rte_ether_addr sha = arp->arp_data.arp_sha;
      auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
      eth->dst_addr = sha;
      eth->src_addr = d->mac;
      arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
      arp->arp_data.arp_tha = sha;
      arp->arp_data.arp_tip = rte_cpu_to_be_32(sip);
      arp->arp_data.arp_sha = d->mac;
      arp->arp_data.arp_sip = rte_cpu_to_be_32(tip);
      meta(m).dev = dev;
      meta(m).flags &= static_cast<uint8_t>(~kFlagVlan);
      replies[nr++] = m;
      continue;
    }
    if (sip != 0) {
      uint8_t kind =
          sip == tip ? kEvGarp
                     : (op == RTE_ARP_OP_REPLY && pt == PktType::host ? kEvReplyToUs : kEvOther);
      NeighEvent ev{sip, dev, kind, 0, {}, 0};
      std::memcpy(ev.mac, arp->arp_data.arp_sha.addr_bytes, 6);
      rte_ring_enqueue_elem(ws.events, &ev, sizeof ev);
    }
    SLUICE_TRACE(w, m, "arp_process", dev,
                 op == RTE_ARP_OP_REQUEST ? "request not for us" : "reply: sender learned");
    w.free_later(m);
  }
  // [arp/out] NF_ARP_OUT (out = dev) for the replies made here.
  if (nr != 0 && l3.hooks != nullptr && l3.hooks->list(SLUICE_ARP_OUT) != nullptr) {
    hooks::State st{SLUICE_ARP_OUT, static_cast<uint16_t>(w.id), kNoDev, dev, nullptr};
    nr = l3.hooks->run(w, st, replies, nr, dev);
  }
  if (nr != 0) dev_queue_xmit(w, *d, replies, nr);
}

// okfns after a queue consumer's accept: arp/in → arp_process, arp/out → the wire.
void ok_in(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  arp_process(w, *static_cast<L3*>(l3), st.in, pkts, n);
}
void ok_out(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void*) {
  if (Device* d = w.net.dev(st.out))
    dev_queue_xmit(w, *d, pkts, n);
  else
    for (uint16_t i = 0; i < n; i++) w.drop(pkts[i], st.out, DropReason::dev_ready);
}

}  // namespace

void arp_rcv(Worker& w, void* vctx, rte_mbuf** pkts, uint16_t n) {
  L3& l3 = *static_cast<L3*>(vctx);
  const uint16_t dev = meta(pkts[0]).dev;
  const Device* d = w.net.dev(dev);
  // [arp/in] NF_ARP_IN (arptables INPUT, in = dev), before arp_process.
  if (l3.hooks != nullptr && l3.hooks->list(SLUICE_ARP_IN) != nullptr && d->kind != DevKind::punt) {
    hooks::State st{SLUICE_ARP_IN, static_cast<uint16_t>(w.id), dev, kNoDev, nullptr};
    n = l3.hooks->run(w, st, pkts, n, dev);
  }
  if (n != 0) arp_process(w, l3, dev, pkts, n);
}

void arp_set_okfns(L3& l3) {
  if (l3.hooks == nullptr) return;
  l3.hooks->set_okfn(SLUICE_ARP_IN, ok_in, &l3);
  l3.hooks->set_okfn(SLUICE_ARP_OUT, ok_out, &l3);
}

// ---- control thread -------------------------------------------------------------------------

bool arp_send(L3& l3, uint16_t dev, uint16_t op, uint32_t sip, const rte_ether_addr* tha_unicast,
              uint32_t tip) {
  Device* d = l3.dp.net.dev(dev);
  rte_mempool* mp = l3.ctl_pool();
  if (d == nullptr || mp == nullptr) return false;
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return false;
  auto* eth = reinterpret_cast<rte_ether_hdr*>(
      rte_pktmbuf_append(m, sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)));
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  static const rte_ether_addr bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  eth->dst_addr = tha_unicast != nullptr ? *tha_unicast : bcast;
  eth->src_addr = d->mac;
  eth->ether_type = rte_cpu_to_be_16(kEthPArp);
  arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = rte_cpu_to_be_16(kEthPIp);
  arp->arp_hlen = 6;
  arp->arp_plen = 4;
  arp->arp_opcode = rte_cpu_to_be_16(op);
  arp->arp_data.arp_sha = d->mac;
  arp->arp_data.arp_sip = rte_cpu_to_be_32(sip);
  std::memset(&arp->arp_data.arp_tha, 0, 6);  // arp_solicit: target hardware address zero
  arp->arp_data.arp_tip = rte_cpu_to_be_32(tip);
  std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
  meta(m).dev = dev;
  if (l3.hooks != nullptr && l3.hooks->list(SLUICE_ARP_OUT) != nullptr)
    l3.hooks->run_on_worker(SLUICE_ARP_OUT, m, kNoDev, dev, 0);  // arp_xmit: NF_ARP_OUT
  else
    l3.inject(m, 0);
  return true;
}

}  // namespace sluice::l3
