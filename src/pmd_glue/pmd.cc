#include "pmd_glue/pmd.hh"

#include <numa.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>

#include <rte_bus.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <spdlog/spdlog.h>

#include "config/memory.hh"
#include "core/netif.hh"
#include "core/rx_csum.hh"

namespace sluice::pmd {

namespace {

std::string normalize_pci(const std::string& a) {
  return std::count(a.begin(), a.end(), ':') == 1 ? "0000:" + a : a;
}

std::string vdev_name(const std::string& devargs) {
  return devargs.substr(0, devargs.find(','));
}

std::string fmt_mac(const rte_ether_addr& a) {
  char b[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(b, sizeof b, &a);
  return b;
}

int lsc_callback(uint16_t, rte_eth_event_type, void* dp, void*) {
  static_cast<Dataplane*>(dp)->link_event.store(true);
  return 0;
}

// Worker ids (indexes into wl) that poll port p.
std::vector<unsigned> pollers_of(const config::Port& p, const std::vector<unsigned>& wl) {
  std::vector<unsigned> pollers;
  for (unsigned i = 0; i < wl.size(); i++)
    if (p.workers.empty() ||
        std::find(p.workers.begin(), p.workers.end(), wl[i]) != p.workers.end())
      pollers.push_back(i);
  return pollers;
}

unsigned pow2_minus1_at_least(uint64_t n) {
  uint64_t v = 1;
  while (v - 1 < n) v <<= 1;
  return static_cast<unsigned>(v - 1);
}

}  // namespace

uint64_t infinite_rx_preload(const std::string& devargs, unsigned data_room) {
  if (vdev_name(devargs).rfind("net_pcap", 0) != 0 || data_room == 0) return 0;
  std::string file;
  bool infinite = false;
  size_t pos = devargs.find(',');
  while (pos != std::string::npos) {
    size_t next = devargs.find(',', pos + 1);
    std::string kv = devargs.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    pos = next;
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "rx_pcap") file = v;
    // The PMD takes any positive number as "on" (atoi).
    if (k == "infinite_rx") infinite = std::atoi(v.c_str()) > 0;
  }
  if (!infinite || file.empty()) return 0;
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* pc = pcap_open_offline(file.c_str(), err);
  if (pc == nullptr) {
    spdlog::warn("cannot read {} to size the mbuf pool for its infinite_rx preload: {}", file, err);
    return 0;
  }
  uint64_t mbufs = 0;
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(pc, &h, &data) == 1)
    mbufs += std::max<uint64_t>(1, (uint64_t(h->caplen) + data_room - 1) / data_room);
  pcap_close(pc);
  return mbufs;
}

std::vector<std::string> eal_args(const config::Topology& topo, const std::string& prog) {
  // A mapping ("0@0,1@0,2@1") is --lcores; EAL ignores --lcores after -l.
  bool mapped = config::parse_lcore_spec(topo.eal.lcores).mapped;
  std::vector<std::string> a = {prog, mapped ? "--lcores" : "-l", topo.eal.lcores,
                                "--file-prefix=" + topo.eal.file_prefix};
  if (!topo.eal.hugepages) {
    a.push_back("--no-huge");
    a.push_back("-m");
    a.push_back(std::to_string(topo.eal.memory_mb));
  } else {
    a.push_back("--socket-mem=" + std::to_string(topo.eal.memory_mb));
  }
  bool any_pci = false;
  for (auto& p : topo.ports)
    if (p.is_pci) {
      any_pci = true;
      a.push_back("-a");
      a.push_back(normalize_pci(p.device));
    }
  if (!any_pci) a.push_back("--no-pci");
  if (!topo.control.telemetry) a.push_back("--no-telemetry");
  for (auto& x : topo.eal.args) a.push_back(x);
  return a;
}

void init_eal(const config::Topology& topo, const std::string& prog) {
  auto args = eal_args(topo, prog);
  std::string line;
  for (auto& x : args) line += x + " ";
  spdlog::info("EAL: {}", line);
  std::vector<char*> argv;
  for (auto& x : args) argv.push_back(x.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0)
    throw std::runtime_error(std::string("EAL init failed: ") + rte_strerror(rte_errno));
  if (numa_available() >= 0) spdlog::info("NUMA: {} node(s)", numa_num_configured_nodes());
}

namespace {

// One Worker per worker lcore of eal.lcores.
void create_workers(Dataplane& dp, const std::vector<unsigned>& wl) {
  if (wl.empty())
    throw std::runtime_error("eal.lcores names no worker lcore (the first is the control thread)");
  for (unsigned lc : wl)
    if (!rte_lcore_is_enabled(lc))
      throw std::runtime_error("lcore " + std::to_string(lc) + " is not enabled");
  for (unsigned i = 0; i < wl.size(); i++)
    dp.workers.push_back(std::make_unique<Worker>(dp.net, i, wl[i]));
}

// Pools: per socket of the polling lcores; sized for every descriptor,
// every cache, TX buffers, and a margin for captures of in-flight packets;
// plus, on the socket of the port's pool, the whole file of every net_pcap
// infinite_rx port (the PMD preloads it into mbufs of the pool at queue
// setup and keeps them until the port is closed).
void create_pools(Dataplane& dp, const std::vector<unsigned>& wl) {
  const auto& topo = dp.topo;
  const uint64_t need = config::packet_pool_mbufs(topo, wl.size());  // what the loader checked
  std::map<unsigned, uint64_t> preload;                              // socket → mbufs
  for (auto& p : topo.ports) {
    auto pollers = pollers_of(p, wl);
    if (pollers.empty()) continue;  // refused by setup_port
    unsigned sock = rte_lcore_to_socket_id(dp.workers[pollers[0]]->lcore);
    preload[sock] += infinite_rx_preload(p.device, RTE_MBUF_DEFAULT_DATAROOM);
  }
  std::set<unsigned> sockets;
  for (auto& w : dp.workers) sockets.insert(rte_lcore_to_socket_id(w->lcore));
  for (unsigned s : sockets) {
    std::string name = "sluice_pkt_s" + std::to_string(s);
    rte_mempool* mp =
        rte_pktmbuf_pool_create(name.c_str(), pow2_minus1_at_least(need + preload[s]), 256,
                                kMbufPrivSize, RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(s));
    if (mp == nullptr)
      throw std::runtime_error("cannot create mbuf pool on socket " + std::to_string(s) + ": " +
                               rte_strerror(rte_errno) + " (raise eal.memory_mb)");
    dp.pools[s] = mp;
    spdlog::info("mbuf pool {}: {} mbufs on socket {} ({} for net_pcap infinite_rx preloads)", name,
                 mp->size, s, preload[s]);
  }
}

// The ethdev of a port: a PCI device EAL probed (-a), or a vdev probed now.
uint16_t probe_port(const config::Port& p) {
  std::string name;
  if (p.is_pci) {
    name = normalize_pci(p.device);
    uint16_t existing;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &existing) != 0) {
      // Not probed by EAL at start (-a): a port a reload adds.
      int rc = rte_dev_probe(name.c_str());
      if (rc < 0)
        throw std::runtime_error("port '" + p.name + "': cannot probe PCI device " + name + ": " +
                                 rte_strerror(-rc) +
                                 " (bound to vfio-pci? EAL runs with --no-pci when it started "
                                 "without a PCI port: then adding one needs a restart)");
    }
  } else {
    name = vdev_name(p.device);
    uint16_t existing;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &existing) != 0) {
      int rc = rte_dev_probe(rx_csum::port_devargs(p.device).c_str());  // af_packet: 64 KB frames
      if (rc < 0)
        throw std::runtime_error("port '" + p.name + "': cannot probe '" + p.device +
                                 "': " + rte_strerror(-rc));
    }
  }
  uint16_t pid;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &pid) != 0)
    throw std::runtime_error("port '" + p.name + "': no ethdev named '" + name +
                             "' (is the PCI device bound to vfio-pci?)");
  return pid;
}

// How many TX queues: one per worker when the PMD has them; with fewer
// (net_pcap has one), the workers above the last queue cannot send on this
// port (drop reason no_txq): queues are never shared, so never locked.
unsigned tx_queue_count(const config::Port& p, const rte_eth_dev_info& info, size_t workers) {
  unsigned ntx = std::max<unsigned>(p.tx_queues, static_cast<unsigned>(workers));
  if (ntx > info.max_tx_queues && p.tx_queues <= info.max_tx_queues && info.max_tx_queues > 0) {
    spdlog::warn(
        "port {}: {} has {} TX queue(s) for {} workers: workers {}.. cannot send on it "
        "(drop reason no_txq)",
        p.name, info.driver_name, info.max_tx_queues, workers, info.max_tx_queues);
    ntx = info.max_tx_queues;
  }
  return ntx;
}

// rte_eth_dev_configure and the queues, RX from mp.
void configure_port(const config::Port& p, uint16_t pid, const rte_eth_dev_info& info, unsigned nrx,
                    unsigned ntx, unsigned sock, rte_mempool* mp) {
  if (nrx > info.max_rx_queues || ntx > info.max_tx_queues)
    throw std::runtime_error("port '" + p.name + "': " + info.driver_name + " supports " +
                             std::to_string(info.max_rx_queues) + " rx / " +
                             std::to_string(info.max_tx_queues) + " tx queues, asked " +
                             std::to_string(nrx) + " / " + std::to_string(ntx));
  rte_eth_conf conf{};
  if (nrx > 1) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  // Link state is polled (every 100 ms, and at once on an LSC event) and
  // LSC interrupts stay off: with them on, rte_eth_link_get_nowait only
  // returns the status cached by the interrupt handler, and some PMDs never
  // raise it (e1000e under vfio MSI-X: carrier loss went unseen), while
  // most vdevs have no interrupt at all. Polling reads the PHY every time.
  conf.intr_conf.lsc = 0;
  if (int rc = rte_eth_dev_configure(pid, nrx, ntx, &conf); rc != 0)
    throw std::runtime_error("port '" + p.name + "': configure: " + rte_strerror(-rc));
  uint16_t nb_rxd = p.rx_desc, nb_txd = p.tx_desc;
  rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, &nb_txd);
  int dev_sock = rte_eth_dev_socket_id(pid);
  for (unsigned q = 0; q < nrx; q++)
    if (int rc =
            rte_eth_rx_queue_setup(pid, q, nb_rxd, dev_sock < 0 ? sock : dev_sock, nullptr, mp);
        rc != 0)
      throw std::runtime_error("port '" + p.name + "': rx queue " + std::to_string(q) + ": " +
                               rte_strerror(-rc));
  for (unsigned q = 0; q < ntx; q++)
    if (int rc = rte_eth_tx_queue_setup(pid, q, nb_txd, SOCKET_ID_ANY, nullptr); rc != 0)
      throw std::runtime_error("port '" + p.name + "': tx queue " + std::to_string(q) + ": " +
                               rte_strerror(-rc));
}

// MTU, MAC, promiscuous and all-multicast; returns the MAC sluice uses.
rte_ether_addr apply_port_settings(const config::Port& p, uint16_t pid) {
  uint16_t cur_mtu = 0;
  if (rte_eth_dev_get_mtu(pid, &cur_mtu) == 0 && cur_mtu == p.mtu) {
    // already right
  } else if (int rc = rte_eth_dev_set_mtu(pid, p.mtu); rc != 0) {
    spdlog::warn("port {}: cannot set MTU {} ({}); keeping the PMD's", p.name, p.mtu,
                 rte_strerror(-rc));
  }
  rte_ether_addr mac;
  if (p.mac) {
    rte_ether_unformat_addr(p.mac->c_str(), &mac);
    if (int rc = rte_eth_dev_default_mac_addr_set(pid, &mac); rc != 0)
      spdlog::info("port {}: PMD refused MAC {} ({}); sluice uses it anyway", p.name, *p.mac,
                   rte_strerror(-rc));
  } else {
    rte_eth_macaddr_get(pid, &mac);
  }
  int prc = p.promiscuous ? rte_eth_promiscuous_enable(pid) : rte_eth_promiscuous_disable(pid);
  if (prc != 0 && prc != -ENOTSUP)
    spdlog::warn("port {}: promiscuous {}: {}", p.name, p.promiscuous ? "on" : "off",
                 rte_strerror(-prc));
  rte_eth_allmulticast_enable(pid);
  return mac;
}

// Stops (when started), closes and detaches an ethdev (rte_dev_remove, so
// that the same device can be probed again).
void close_ethdev(Dataplane& dp, uint16_t pid, const std::string& name, bool started) {
  rte_eth_dev_info info{};
  rte_eth_dev_info_get(pid, &info);
  rte_eth_dev_callback_unregister(pid, RTE_ETH_EVENT_INTR_LSC, lsc_callback, &dp);
  if (started)
    if (int rc = rte_eth_dev_stop(pid); rc != 0)
      spdlog::warn("port {}: stop: {}", name, rte_strerror(-rc));
  rte_eth_dev_close(pid);
  if (info.device != nullptr) rte_dev_remove(info.device);
}

}  // namespace

// One port of ports: probed, configured, started; its Device and PortInfo.
// A failure after the probe closes and detaches the ethdev again.
void add_port(Dataplane& dp, const config::Port& p) {
  std::vector<unsigned> wl;  // the workers' lcores, in worker id order
  for (auto& w : dp.workers) wl.push_back(w->lcore);
  if (dp.net.find(p.name) != nullptr)
    throw std::runtime_error("port '" + p.name + "': a device of that name exists");
  uint16_t pid = probe_port(p);
  bool started = false;
  rte_eth_dev_info info{};
  unsigned nrx = p.rx_queues, ntx = 0, sock = 0;
  std::vector<unsigned> pollers;
  rte_mempool* rx_mp = nullptr;
  rte_ether_addr mac{};
  try {
    if (int rc = rte_eth_dev_info_get(pid, &info); rc != 0)
      throw std::runtime_error("port '" + p.name + "': dev_info: " + rte_strerror(-rc));
    ntx = tx_queue_count(p, info, wl.size());
    // The pool of the socket of the first worker that polls this port.
    pollers = pollers_of(p, wl);
    if (pollers.empty()) throw std::runtime_error("port '" + p.name + "': no worker polls it");
    sock = rte_lcore_to_socket_id(dp.workers[pollers[0]]->lcore);
    rx_mp = rx_csum::rx_pool(dp, p.device, sock, dp.pool_for_socket(sock));
    configure_port(p, pid, info, nrx, ntx, sock, rx_mp);
    mac = apply_port_settings(p, pid);
    // PMDs that report link events without the interrupt mode (net_vhost,
    // bonding) still wake the poller early.
    rte_eth_dev_callback_register(pid, RTE_ETH_EVENT_INTR_LSC, lsc_callback, &dp);
    if (int rc = rte_eth_dev_start(pid); rc != 0)
      throw std::runtime_error("port '" + p.name + "': start: " + rte_strerror(-rc));
    started = true;
    // What the RX queues already hold is not this port's: net_af_packet's
    // socket takes every interface's frames until it is bound to its own
    // (inside the probe), and a bridge would learn those MACs on this port.
    // Other PMDs keep theirs (a net_pcap or net_ring port's input).
    rte_mbuf* junk[kBurst];
    for (unsigned q = 0; rx_csum::is_af_packet(p.device) && q < nrx; q++)
      for (int i = 0; i < 1024; i++) {
        uint16_t n = rte_eth_rx_burst(pid, static_cast<uint16_t>(q), junk, kBurst);
        if (n == 0) break;
        rte_pktmbuf_free_bulk(junk, n);
      }
  } catch (...) {
    close_ethdev(dp, pid, p.name, started);
    throw;
  }

  auto d = std::make_unique<Device>();
  d->name = p.name;
  d->kind = DevKind::port;
  d->port_id = pid;
  d->tx_queues = static_cast<uint16_t>(ntx);
  d->mac = mac;
  uint16_t mtu = 0;
  d->mtu = rte_eth_dev_get_mtu(pid, &mtu) == 0 && mtu != 0 ? mtu : static_cast<uint16_t>(p.mtu);
  d->promiscuous = p.promiscuous;
  d->xmit = port_xmit;
  d->oper_up = false;  // until the first link poll
  Device* dev = dp.net.add_device(std::move(d));
  if (dev == nullptr) {
    close_ethdev(dp, pid, p.name, true);
    throw std::runtime_error("port '" + p.name + "': duplicate device name or device table full");
  }
  rx_csum::attach(dp, *dev, info.driver_name, p.device, dp.pool_for_socket(sock), rx_mp);

  PortInfo pi;
  pi.dev = dev->index;
  pi.port_id = pid;
  pi.devargs = p.device;
  pi.driver = info.driver_name;
  pi.rx_queues = nrx;
  pi.tx_queues = ntx;
  pi.socket = sock;
  for (unsigned q = 0; q < nrx; q++) pi.pollers.emplace_back(pollers[q % pollers.size()], q);
  dp.ports.push_back(pi);
  spdlog::info("port {}: {} ({}) ethdev {} mac {} rxq {} txq {} mtu {}", p.name, p.device,
               info.driver_name, pid, fmt_mac(mac), nrx, ntx, dev->mtu);
}

void close_port(Dataplane& dp, const PortInfo& pi, const std::string& name) {
  close_ethdev(dp, pi.port_id, name, true);
  spdlog::info("port {}: {} ethdev {} stopped, closed and removed", name, pi.devargs, pi.port_id);
}

void setup(Dataplane& dp) {
  std::vector<unsigned> wl = config::parse_lcores(dp.topo.eal.lcores);
  create_workers(dp, wl);  // first: their lcores decide the NUMA sockets that need pools
  create_pools(dp, wl);
  for (auto& p : dp.topo.ports) add_port(dp, p);
  poll_links(dp);
}

void poll_links(Dataplane& dp) {
  dp.link_event.store(false);
  for (auto& pi : dp.ports) {
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(pi.port_id, &link) != 0) continue;
    bool up = link.link_status == RTE_ETH_LINK_UP;
    Device* d = dp.net.dev(pi.dev);
    bool changed = up != d->oper_up.load() || link.link_speed != pi.speed_mbps;
    pi.link_up = up;
    pi.speed_mbps = link.link_speed;
    pi.full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
    if (up != d->oper_up.load()) {
      d->oper_up.store(up);
      pi.link_changes++;
    }
    if (changed) {
      char s[RTE_ETH_LINK_MAX_STR_LEN];
      rte_eth_link_to_str(s, sizeof s, &link);
      spdlog::info("link {}: {}", d->name, s);
    }
  }
}

uint64_t close_ports(Dataplane& dp) {
  for (auto& pi : dp.ports) {
    rte_eth_dev_info info{};
    rte_eth_dev_info_get(pi.port_id, &info);
    if (int rc = rte_eth_dev_stop(pi.port_id); rc != 0)
      spdlog::warn("port {}: stop: {}", dp.net.dev(pi.dev)->name, rte_strerror(-rc));
    rte_eth_dev_close(pi.port_id);
    if (info.device != nullptr) rte_dev_remove(info.device);  // detach, so it can be probed again
  }
  // Workers' leftovers (nothing should remain after flush_tx).
  for (auto& w : dp.workers) w->flush_free();
  uint64_t missing = 0;
  for (auto& [sock, mp] : dp.pools) {
    unsigned avail = rte_mempool_avail_count(mp);
    if (avail == mp->size) {
      spdlog::info("mbuf pool {}: all {} mbufs back", mp->name, mp->size);
    } else {
      spdlog::warn("mbuf pool {}: {} of {} mbufs back ({} missing)", mp->name, avail, mp->size,
                   mp->size - avail);
      missing += mp->size - avail;
    }
  }
  if (missing == 0) {
    for (auto& [sock, mp] : dp.pools) rte_mempool_free(mp);
    dp.pools.clear();
  }
  return missing;
}

}  // namespace sluice::pmd
