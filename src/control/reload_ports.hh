// The `ports:` part of a live reload (src/control/reload.cc): ports added
// and removed while sluiced runs, as Linux hot-plugs a NIC.
//
//   added    probed (a vdev through rte_dev_probe with the devargs start uses,
//            a PCI device likewise), configured and started with the same
//            queues, pool and offloads as at start (pmd::add_port), its
//            Device registered, all before the workers pause and before the
//            features' checks, so that a bridge, a VLAN or an address of the
//            same reload finds it. A probe or start that fails refuses the
//            reload; a later refusal closes and removes it again. With the
//            workers paused, its RX queues join their poll lists.
//   removed  with the workers paused and after the features let go of it
//            (a bridge releases it in its own reload step): its queues leave
//            the poll lists, what is buffered for it is freed, its Device is
//            unplugged from the table (Dataplane::unregister_device); once the workers
//            go on, the ethdev is stopped, closed and removed (rte_dev_remove).
//   changed  a port whose settings differ (device, queues, MTU, MAC, …) is
//            refused with the settings named: that needs a restart.
//
// Ports that did not change are not touched: their queues, counters and
// state go on.
#pragma once

#include <string>
#include <vector>

#include "config/topology.hh"
#include "core/dataplane.hh"

namespace sluice {

struct PortPlan {
  std::vector<config::Port> add;    // in the new file's order
  std::vector<std::string> remove;  // names of running ports
  std::vector<std::string> added;   // the ones prepare_ports started (undone by cancel_ports)
  std::string file;                 // the new file, for FILE:LINE:COL
  std::vector<std::pair<PortInfo, std::string>> closing;  // out, ethdev still open
  bool empty() const { return add.empty() && remove.empty(); }
};

// What changes; "" when the reload may go on, else the reason. Changes nothing.
std::string check_ports(Dataplane& dp, const config::Topology& next, PortPlan* plan);
// Workers running: the added ports probed, started and registered (not
// polled yet). On failure, what it started is undone and the reason returned.
std::string prepare_ports(Dataplane& dp, PortPlan& plan);
// A later check refused the reload: the prepared ports closed and removed.
void cancel_ports(Dataplane& dp, PortPlan& plan);
// Workers paused, before the features apply: the added ports' RX queues go
// to their workers and their links are read.
void attach_ports(Dataplane& dp, const PortPlan& plan);
// Workers paused, after the features applied: the removed ports leave the
// poll lists, dp.ports and the device table (what is buffered for them is
// freed).
void detach_ports(Dataplane& dp, PortPlan& plan);
// After the workers resumed: the removed ports' ethdevs stopped, closed and
// detached (rte_dev_remove; kept out of the pause, as it can take a while).
void close_removed_ports(Dataplane& dp, PortPlan& plan);

}  // namespace sluice
