// PMD glue: EAL start-up from the `eal:` section, mbuf pools per NUMA socket,
// ports (PCI devices on vfio-pci or vdevs) probed, configured and started,
// link state polled, ports closed. EAL and ethdev only: the poll loop is
// Worker::run (src/core/worker.cc), VLAN devices and features are built by
// Dataplane::build (src/core/dataplane.cc).
//
// Config keys: eal.*, ports[].{device, rx_queues, tx_queues, mtu, mac,
//   promiscuous, workers, rx_desc, tx_desc}.
// Logs: link changes ("link eth0: up 10 Gbps full-duplex").
#pragma once

#include <string>
#include <vector>

#include "config/topology.hh"
#include "core/dataplane.hh"

namespace sluice::pmd {

// The argv given to rte_eal_init for a topology (exposed for tests and logs):
// eal.lcores goes as -l, or as --lcores when it maps lcores to CPUs.
std::vector<std::string> eal_args(const config::Topology& topo, const std::string& prog);

// Mbufs that a port's PMD takes from its RX pool at queue setup and keeps:
// for "net_pcap…,rx_pcap=FILE,infinite_rx=1" every frame of FILE (one mbuf
// per data_room bytes of it), 0 for any other device. Reads FILE with libpcap.
uint64_t infinite_rx_preload(const std::string& devargs, unsigned data_room);

// rte_eal_init; throws std::runtime_error with EAL's reason.
void init_eal(const config::Topology& topo, const std::string& prog);

// Workers, pools and the ports of dp.topo, started, links read once.
// Throws std::runtime_error.
void setup(Dataplane& dp);

// One port of a topology on the running dataplane (its workers and pools
// exist): probed (a vdev through rte_dev_probe with the devargs start uses,
// a PCI device EAL did not probe likewise), configured and started with the
// same queues, pool and offloads as at start, its Device registered and its
// PortInfo appended to dp.ports (pollers set; the workers' poll lists are
// not touched). setup() calls it for every port, a reload for a port it
// adds. Throws std::runtime_error; after a failure the ethdev is closed and
// detached again and nothing is registered.
void add_port(Dataplane& dp, const config::Port& p);

// Stops, closes and detaches (rte_dev_remove) the ethdev of a port that
// add_port started and that nothing polls or sends on any more. The caller
// (a reload: src/control/reload_ports.cc) has taken it out of dp.ports, the
// workers' poll lists and the device table.
void close_port(Dataplane& dp, const PortInfo& pi, const std::string& name);

// Control thread: read link state of every port, log and apply changes
// (also when dp.link_event was set by a PMD's link event).
void poll_links(Dataplane& dp);

// Stop and close every port; then report whether every pool is full again.
// Returns the number of mbufs missing (0 = all returned).
uint64_t close_ports(Dataplane& dp);

}  // namespace sluice::pmd
