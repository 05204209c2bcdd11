// The punt path: one TAP (DPDK net_tap) per `punt:` entry, so that the host
// kernel's sockets work on sluice's addresses — ssh, a routing daemon, a
// TCP listener.
//
//  * sluice → kernel: local packets that the dataplane does not answer
//    itself (everything but ICMP echo requests and ARP) leave through the
//    TAP of the device that owns the destination address. The kernel side
//    has the device's MAC and addresses, so it takes them as its own.
//  * kernel → sluice: the TAP is a port polled by worker 0. What the kernel
//    sends (ARP off on its side: sluice resolves neighbours) enters
//    local_out → routing → ip_output → the wire, like any packet sluice makes
//    (ip_from_host, on the worker).
#include <cstdlib>
#include <stdexcept>

#include <rte_byteorder.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <spdlog/spdlog.h>

#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/netif.hh"
#include "l3/config.hh"
#include "l3/ipv4.hh"

namespace sluice::l3 {

namespace {
void run(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) spdlog::warn("punt: '{}' failed", cmd);
}
}  // namespace

void add_punt_ports(Dataplane& dp) {
  unsigned k = 0;
  for (const auto& p : dp.topo.get<Config>().punt) {
    Device* d = dp.net.find(p.dev);
    if (d == nullptr)
      throw std::runtime_error("punt " + p.tap + ": device '" + p.dev + "' does not exist");
    std::string name = "net_tap" + std::to_string(90 + k++);
    std::string devargs = name + ",iface=" + p.tap;
    if (int rc = rte_dev_probe(devargs.c_str()); rc < 0)
      throw std::runtime_error("punt " + p.tap + ": cannot create '" + devargs +
                               "': " + rte_strerror(-rc));
    uint16_t pid;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &pid) != 0)
      throw std::runtime_error("punt " + p.tap + ": no ethdev " + name);
    uint16_t ntx = static_cast<uint16_t>(std::max<size_t>(1, dp.workers.size()));
    rte_eth_conf conf{};
    if (int rc = rte_eth_dev_configure(pid, 1, ntx, &conf); rc != 0)
      throw std::runtime_error("punt " + p.tap + ": configure: " + rte_strerror(-rc));
    rte_mempool* mp = dp.pool_for_socket(0);
    if (int rc = rte_eth_rx_queue_setup(pid, 0, 512, SOCKET_ID_ANY, nullptr, mp); rc != 0)
      throw std::runtime_error("punt " + p.tap + ": rx queue: " + rte_strerror(-rc));
    for (uint16_t q = 0; q < ntx; q++)
      if (int rc = rte_eth_tx_queue_setup(pid, q, 512, SOCKET_ID_ANY, nullptr); rc != 0)
        throw std::runtime_error("punt " + p.tap + ": tx queue: " + rte_strerror(-rc));
    rte_eth_promiscuous_enable(pid);
    if (int rc = rte_eth_dev_start(pid); rc != 0)
      throw std::runtime_error("punt " + p.tap + ": start: " + rte_strerror(-rc));

    auto pd = std::make_unique<Device>();
    pd->name = p.tap;
    pd->kind = DevKind::punt;
    pd->port_id = pid;
    pd->mac = d->mac;
    pd->mtu = d->mtu;
    pd->link = d->index;
    pd->promiscuous = true;
    pd->xmit = port_xmit;
    Device* punt = dp.net.add_device(std::move(pd));
    if (punt == nullptr)
      throw std::runtime_error("punt " + p.tap + ": a device with that name exists");

    PortInfo pi;
    pi.dev = punt->index;
    pi.port_id = pid;
    pi.devargs = devargs;
    pi.driver = "net_tap";
    pi.rx_queues = 1;
    pi.tx_queues = ntx;
    pi.pollers.emplace_back(0, 0);
    dp.ports.push_back(pi);

    // The kernel side: the device's MAC and addresses, no ARP of its own.
    std::string mac = mac_to_string(d->mac);
    run("ip link set dev " + p.tap + " address " + mac);
    run("ip link set dev " + p.tap + " arp off");
    run("ip link set dev " + p.tap + " mtu " + std::to_string(d->mtu));
    run("sysctl -qw net.ipv6.conf." + p.tap + ".disable_ipv6=1");
    for (const auto& a : dp.topo.get<Config>().addresses)
      if (a.dev == p.dev && a.address.find(':') == std::string::npos)
        run("ip addr add " + a.address + " dev " + p.tap);
    run("ip link set dev " + p.tap + " up");
    spdlog::info("punt: {} (ethdev {}) is the host side of {} (mac {})", p.tap, pid, p.dev, mac);
  }
}

// ---- on the worker: what the host kernel sends ---------------------------------------------

// Packets from the kernel's side of a punt TAP are locally generated:
// sanity checks only, then ip_local_out (routing, neighbours, the wire).
void ip_from_host(Ctx4& c, rte_mbuf** pkts, uint16_t n, uint16_t dev) {
  rte_mbuf* ok[kBurst];
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    uint32_t len = m->pkt_len - sizeof(rte_ether_hdr);
    m = unshare(c.w, m);
    if (m == nullptr) continue;
    if (len < sizeof(rte_ipv4_hdr) || m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) ||
        (iph(m)->version_ihl >> 4) != 4 || (iph(m)->version_ihl & 0xf) < 5 ||
        rte_be_to_cpu_16(iph(m)->total_length) > len) {
      c.w.drop(m, dev, DropReason::ip_inhdr);
      continue;
    }
    uint32_t tot = rte_be_to_cpu_16(iph(m)->total_length);
    if (len > tot) rte_pktmbuf_trim(m, static_cast<uint16_t>(len - tot));
    uint32_t dst = rte_be_to_cpu_32(iph(m)->dst_addr);
    const LocalSlot* ls = c.s->find_local(dst);
    if (is_multicast(dst) || is_lbcast(dst) || (ls != nullptr && ls->type == RtType::broadcast)) {
      c.w.drop(m, dev, DropReason::ip_invalid_dest);  // no multicast/broadcast output from the host
      continue;
    }
    meta(m).skb_iif = dev;
    ok[k++] = m;
  }
  Out4 out;
  if (k != 0) local_out(c, out, ok, k);
  neigh_output(c, out);
}

}  // namespace sluice::l3
