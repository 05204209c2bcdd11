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
//    local_out → routing → ip_output → the wire, like any packet sluice makes.
#include <cstdlib>
#include <stdexcept>

#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <spdlog/spdlog.h>

#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/netif.hh"
#include "l3/l3.hh"
#include "l3/config.hh"

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
      throw std::runtime_error(
          "punt " + p.tap + ": device '" + p.dev +
          "' does not exist");
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

}  // namespace sluice::l3
