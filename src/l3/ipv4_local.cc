// ip_local_deliver (net/ipv4/ip_input.c) on the worker: fragments go to the
// host kernel (a punt TAP) or are dropped (no reassembly here);
// [ipv4/local_in]; ip_local_deliver_finish: ICMP echo is answered here
// (icmp.cc), the rest goes to the punt TAP of the device owning the address,
// or — without one, a host with no sockets — UDP gets ICMP port unreachable,
// TCP a reset (tcp_v4_send_reset), other protocols ICMP protocol unreachable.
// Spec: ../shared/spec/linux-rx.md §6.4.
#include <rte_byteorder.h>
#include <rte_icmp.h>
#include <rte_tcp.h>

#include "l3/ipv4.hh"

namespace sluice::l3 {

namespace {

// tcp_v4_send_reset for a segment to a local address with no socket (no
// punt TAP): never for a RST; ACK set → seq = its ack_seq, else RST|ACK with
// ack = seq + SYN + FIN + payload. Rewritten in place; false → drop it
// (m is then still owned by the caller, or null when the checksum was bad
// and it was dropped here).
bool tcp_reset(Ctx& c, rte_mbuf*& m, uint16_t dev) {
  rte_ipv4_hdr* ip = iph(m);
  unsigned hl = (ip->version_ihl & 0xf) * 4u;
  uint16_t tot = rte_be_to_cpu_16(ip->total_length);
  if (tot < hl + 20 || m->data_len < sizeof(rte_ether_hdr) + tot) return false;
  auto* tcp = reinterpret_cast<uint8_t*>(ip) + hl;
  if (hl == 20 && rte_ipv4_udptcp_cksum_verify(ip, tcp) != 0) {
    c.ws.m(dev)[Mib::TcpInCsumErrors]++;
    c.w.drop(m, dev, DropReason::tcp_csum);
    m = nullptr;
    return false;
  }
  uint8_t flags = tcp[13];
  if (flags & 0x04) return false;  // RST
  unsigned doff = (tcp[12] >> 4) * 4u;
  uint32_t seq, ack;
  std::memcpy(&seq, tcp + 4, 4);
  std::memcpy(&ack, tcp + 8, 4);
  uint16_t sport, dport;
  std::memcpy(&sport, tcp, 2);
  std::memcpy(&dport, tcp + 2, 2);
  uint32_t payload = tot > hl + doff ? tot - hl - doff : 0;
  uint8_t th[20] = {};
  std::memcpy(th, &dport, 2);
  std::memcpy(th + 2, &sport, 2);
  if (flags & 0x10) {  // ACK: seq = ack_seq
    std::memcpy(th + 4, &ack, 4);
    th[13] = 0x04;
  } else {
    uint32_t a =
        rte_be_to_cpu_32(seq) + payload + ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0);
    a = rte_cpu_to_be_32(a);
    std::memcpy(th + 8, &a, 4);
    th[13] = 0x14;
  }
  th[12] = 5 << 4;
  uint32_t src = ip->src_addr;
  ip->version_ihl = 0x45;
  ip->src_addr = ip->dst_addr;
  ip->dst_addr = src;
  ip->total_length = rte_cpu_to_be_16(40);
  ip->time_to_live = 64;
  ip->fragment_offset = rte_cpu_to_be_16(kIpDf);
  ip->packet_id = 0;
  ip->type_of_service = 0;
  std::memcpy(reinterpret_cast<uint8_t*>(ip) + 20, th, 20);
  rte_pktmbuf_trim(m, static_cast<uint16_t>(m->pkt_len - (sizeof(rte_ether_hdr) + 40)));
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  auto* nt = reinterpret_cast<rte_tcp_hdr*>(reinterpret_cast<uint8_t*>(ip) + 20);
  nt->cksum = 0;
  nt->cksum = rte_ipv4_udptcp_cksum(ip, nt);
  c.ws.m(dev)[Mib::TcpOutRsts]++;
  meta(m).skb_iif = dev;
  return true;
}

// To the host kernel: out of punt TAP tap, as received.
inline void punt_to(PktVec& punted, rte_mbuf* m, uint16_t tap) {
  meta(m).dev = tap;
  meta(m).flags &= static_cast<uint8_t>(~kFlagVlan);
  punted.push(m);
}

// ip_local_deliver_finish for one packet of route type rt: the host
// kernel's (punt TAP tap) or answered here. Also the okfn of ipv4/local_in.
void local_deliver_finish(Ctx4& c, PktVec& gen, PktVec& punted, rte_mbuf* m, RtType rt,
                          uint16_t tap, uint16_t dev) {
  Worker& w = c.w;
  MibBlock& mib = c.ws.m(dev);
  rte_ipv4_hdr* ip = iph(m);
  if (tap != kNoDev) {
    // ICMP echo requests are answered here; replies, errors and everything
    // else are for the host's sockets.
    unsigned hl = (ip->version_ihl & 0xf) * 4u;
    bool echo = ip->next_proto_id == kProtoIcmp && m->data_len > sizeof(rte_ether_hdr) + hl &&
                *(reinterpret_cast<const uint8_t*>(ip) + hl) == RTE_IP_ICMP_ECHO_REQUEST;
    if (!echo) {
      mib[Mib::InDelivers]++;
      SLUICE_TRACE(w, m, "ip_local_deliver", dev, "to the host kernel (punt)", tap);
      punt_to(punted, m, tap);
      return;
    }
  }
  switch (ip->next_proto_id) {
    case kProtoIcmp:
      mib[Mib::InDelivers]++;
      icmp_rcv(c, gen, m, rt, dev);
      break;
    case kProtoUdp:
      // No socket on this address (no punt TAP): __udp4_lib_rcv's port unreachable.
      mib[Mib::InDelivers]++;
      if (rt == RtType::local) icmp_send(c, gen, m, 3, 3, 0, dev);
      w.drop(m, dev, DropReason::no_socket);
      break;
    case kProtoTcp:
      // No socket: tcp_v4_send_reset.
      mib[Mib::InDelivers]++;
      if (rt == RtType::local && tcp_reset(c, m, dev)) {
        gen.push(m);
        break;
      }
      if (m != nullptr) w.drop(m, dev, DropReason::no_socket);
      break;
    default:  // no protocol handler: not delivered (ip_protocol_deliver_rcu)
      mib[Mib::InUnknownProtos]++;
      if (rt == RtType::local) icmp_send(c, gen, m, 3, 2, 0, dev);
      w.drop(m, dev, DropReason::ip_noproto);
      break;
  }
}

}  // namespace

static const StageId kStLocalDeliver = stage_register("ip-local-deliver", 440);

void ip_local_deliver(Ctx4& c, uint16_t dev, const LocalBurst& l, PktVec& gen) {
  StageScope scope(c.w.runtime, kStLocalDeliver, l.n);
  MibBlock& mib = c.ws.m(dev);
  PktVec punted;
  rte_mbuf* li[kBurst];
  uint16_t li_idx[kBurst];
  uint16_t nli = 0;
  for (uint16_t i = 0; i < l.n; i++) {
    rte_mbuf* m = l.pkts[i];
    const uint16_t tap = c.s->punt[l.owner[i]];
    if (rte_be_to_cpu_16(iph(m)->fragment_offset) & (kIpMf | kIpOffMask)) {
      mib[Mib::ReasmReqds]++;
      if (tap != kNoDev)  // the host kernel reassembles
        punt_to(punted, m, tap);
      else
        c.w.drop(m, dev, DropReason::ip_frag_local);
      continue;
    }
    li_idx[nli] = i;
    li[nli++] = m;
  }
  // [ipv4/local_in] NF_INET_LOCAL_IN (in = dev), after reassembly (fragments
  // went to the host kernel above).
  uint16_t kept[kBurst];
  nli = run_hook(c, SLUICE_IPV4_LOCAL_IN, dev, li, nli, nullptr, kept);
  for (uint16_t j = 0; j < nli; j++) {
    const uint16_t i = li_idx[kept[j]];
    local_deliver_finish(c, gen, punted, li[j], l.rt[i], c.s->punt[l.owner[i]], dev);
  }
  if (punted.n != 0) xmit_grouped(c.w, punted.pkts, punted.n);
}

// ip_local_deliver_finish with the local route of now.
void ok_local_in(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx4 c = ctx4(w, *static_cast<L3*>(l3));
  PktVec gen, punted;
  Out4 out;
  for (uint16_t i = 0; i < n; i++) {
    uint32_t dst = rte_be_to_cpu_32(iph(pkts[i])->dst_addr);
    RtType rt = RtType::broadcast;  // limited broadcast, all-hosts
    uint16_t owner = st.in;
    if (const LocalSlot* ls = c.s->find_local(dst)) {
      rt = ls->type;
      owner = ls->dev;
    } else if (!is_lbcast(dst) && !is_multicast(dst) && dst != 0) {  // the address went away
      w.drop(pkts[i], st.in, DropReason::ip_invalid_dest);
      continue;
    }
    local_deliver_finish(c, gen, punted, pkts[i], rt, c.s->punt[owner], st.in);
  }
  if (punted.n != 0) xmit_grouped(w, punted.pkts, punted.n);
  if (gen.n != 0) local_out(c, out, gen.pkts, gen.n);
  neigh_output(c, out);
}

}  // namespace sluice::l3
