#include "control/reload_ports.hh"

#include <algorithm>
#include <exception>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <spdlog/spdlog.h>

#include "config/memory.hh"
#include "core/dataplane.hh"
#include "pmd_glue/pmd.hh"

namespace sluice {

namespace {

using config::where;

// The DPDK device a port names: a PCI address with its domain, a vdev by
// the part before the first ',' (as the loader compares them).
std::string device_key(const std::string& device, bool is_pci) {
  if (is_pci) return device.size() == 7 ? "0000:" + device : device;
  return device.substr(0, device.find(','));
}

// The settings of a port that differ, "mtu, mac"; "" when none.
std::string differences(const config::Port& a, const config::Port& b) {
  std::string out;
  auto add = [&](bool differ, const char* what) {
    if (differ) out += (out.empty() ? "" : ", ") + std::string(what);
  };
  add(a.device != b.device || a.is_pci != b.is_pci, "device");
  add(a.rx_queues != b.rx_queues, "rx_queues");
  add(a.tx_queues != b.tx_queues, "tx_queues");
  add(a.mtu != b.mtu, "mtu");
  add(a.mac != b.mac, "mac");
  add(a.promiscuous != b.promiscuous, "promiscuous");
  add(a.workers != b.workers, "workers");
  add(a.rx_desc != b.rx_desc, "rx_desc");
  add(a.tx_desc != b.tx_desc, "tx_desc");
  return out;
}

const config::Port* find_port(const config::Topology& t, const std::string& name) {
  for (const auto& p : t.ports)
    if (p.name == name) return &p;
  return nullptr;
}

// Index in dp.ports of the port whose device is `name`, or -1.
long port_index(Dataplane& dp, const std::string& name) {
  for (size_t i = 0; i < dp.ports.size(); i++) {
    Device* d = dp.net.dev(dp.ports[i].dev);
    if (d != nullptr && d->name == name) return static_cast<long>(i);
  }
  return -1;
}

// The port's queues out of every worker's poll list, its TX buffers freed
// (empty after the workers' last flush; freed all the same). Workers paused.
void unpoll(Dataplane& dp, const PortInfo& pi) {
  for (auto& w : dp.workers) {
    auto& v = w->polls;
    v.erase(
        std::remove_if(v.begin(), v.end(), [&](const RxPoll& p) { return p.port == pi.port_id; }),
        v.end());
    if (pi.port_id < kMaxPorts) {
      TxBuffer& b = w->txbuf[pi.port_id];
      if (b.n != 0) rte_pktmbuf_free_bulk(b.pkts, b.n);
      b.n = 0;
      w->tx_dirty &= ~(uint64_t(1) << pi.port_id);
    }
    w->flush_free();
  }
}

// A port out of the dataplane: polls (paused: the workers may have them),
// dp.ports, device table. Not paused: a port prepare_ports started, that no
// worker polls or sends on yet. Its ethdev is closed later (close_removed_ports).
void take_out(Dataplane& dp, const std::string& name, bool paused, PortPlan& plan) {
  long i = port_index(dp, name);
  if (i < 0) return;
  const PortInfo pi = dp.ports[static_cast<size_t>(i)];
  Device* d = dp.net.dev(pi.dev);
  if (paused) unpoll(dp, pi);
  if (d != nullptr && d->rx_handler.load() != nullptr) {
    spdlog::warn("port {}: {} still held its rx_handler; released", name,
                 d->rx_handler_owner != nullptr ? d->rx_handler_owner : "?");
    dp.net.clear_rx_handler(*d);
  }
  dp.ports.erase(dp.ports.begin() + i);
  if (d != nullptr) {
    d->tx_queues = 0;  // port_xmit drops (no_txq) whatever still reaches it
    d->admin_up.store(false);
    dp.unregister_device(*d);  // what features hold on it (L3's neighbours), then the table
  }
  plan.closing.emplace_back(pi, name);
}

}  // namespace

std::string check_ports(Dataplane& dp, const config::Topology& next, PortPlan* plan) {
  *plan = PortPlan{};
  plan->file = next.file;
  for (const auto& old : dp.topo.ports) {
    const config::Port* now = find_port(next, old.name);
    if (now == nullptr) {
      plan->remove.push_back(old.name);
      continue;
    }
    if (std::string d = differences(old, *now); !d.empty())
      return where(next.file, now->mark) + "section 'ports': port '" + old.name + "' changed (" +
             d +
             "): changing a running port's settings needs a restart of sluiced (a reload "
             "adds and removes ports; nothing was changed)";
  }
  for (const auto& p : next.ports) {
    if (find_port(dp.topo, p.name) != nullptr) continue;
    if (dp.net.find(p.name) != nullptr)
      return where(next.file, p.mark) + "port '" + p.name +
             "': a running device has that name (nothing was changed)";
    // Its DPDK device must not be one a running port holds (a port renamed
    // in one step): the old one leaves only after the new one is probed.
    const std::string key = device_key(p.device, p.is_pci);
    for (const auto& run : dp.topo.ports) {
      if (device_key(run.device, run.is_pci) != key) continue;
      return where(next.file, p.mark) + "port '" + p.name + "': device '" + key +
             "' is held by running port '" + run.name +
             "': remove that port in one reload and add this one in the next (nothing was "
             "changed)";
    }
    plan->add.push_back(p);
  }
  if (plan->add.empty()) return "";
  // The packet pools were sized at start for the start file's descriptors:
  // the new file's must fit in them.
  uint64_t need = config::packet_pool_mbufs(next, dp.workers.size());
  for (const auto& p : next.ports)
    need += pmd::infinite_rx_preload(p.device, RTE_MBUF_DEFAULT_DATAROOM);
  for (const auto& [sock, mp] : dp.pools)
    if (need > mp->size)
      return next.file + ": section 'ports': the ports of the new file need " +
             std::to_string(need) + " mbufs, the packet pool " + mp->name + " has " +
             std::to_string(mp->size) +
             " (sized at start for the start file's ports): adding these ports needs a restart "
             "of sluiced (nothing was changed)";
  return "";
}

std::string prepare_ports(Dataplane& dp, PortPlan& plan) {
  for (const auto& p : plan.add) {
    try {
      pmd::add_port(dp, p);
    } catch (const std::exception& e) {
      cancel_ports(dp, plan);
      return where(plan.file, p.mark) + e.what() + " (nothing was changed)";
    }
    plan.added.push_back(p.name);
  }
  return "";
}

void cancel_ports(Dataplane& dp, PortPlan& plan) {
  for (auto it = plan.added.rbegin(); it != plan.added.rend(); ++it) {
    take_out(dp, *it, false, plan);
    spdlog::info("reload refused: port {} closed again", *it);
  }
  plan.added.clear();
  close_removed_ports(dp, plan);
}

void attach_ports(Dataplane& dp, const PortPlan& plan) {
  for (const auto& name : plan.added) {
    long i = port_index(dp, name);
    if (i < 0) continue;
    const PortInfo& pi = dp.ports[static_cast<size_t>(i)];
    for (auto& [wid, q] : pi.pollers)
      dp.workers[wid]->polls.push_back(RxPoll{pi.port_id, q, dp.net.dev(pi.dev)});
    spdlog::info("port {}: added by reload, polled by {} worker queue(s)", name, pi.pollers.size());
  }
  if (!plan.added.empty()) pmd::poll_links(dp);
}

void detach_ports(Dataplane& dp, PortPlan& plan) {
  for (const auto& name : plan.remove) take_out(dp, name, true, plan);
}

void close_removed_ports(Dataplane& dp, PortPlan& plan) {
  for (const auto& [pi, name] : plan.closing) {
    pmd::close_port(dp, pi, name);
    spdlog::info("port {}: removed by reload", name);
  }
  plan.closing.clear();
}

}  // namespace sluice
