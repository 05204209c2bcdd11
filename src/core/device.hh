// Devices: the kernel's net_device. Ports, VLAN sub-devices and, later,
// bonds, bridges and tunnels are all Devices with the same slots: an
// rx_handler, an xmit, a tap list, ingress/egress action lists, bound
// protocol handlers, counters (per worker, in Worker) and admin/oper state.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "core/stage.hh"

namespace sluice {

struct Worker;
struct Device;
namespace rx_csum {
struct RxFixup;
}

enum class DevKind : uint8_t { port, vlan, bond, bridge, tunnel, punt, loopback };
const char* dev_kind_name(DevKind k);

// RX_HANDLER_* (include/linux/netdevice.h).
enum class RxResult : uint8_t { consumed = 0, another = 1, exact = 2, pass = 3 };

enum class Direction : uint8_t { ingress = 1, egress = 2, both = 3 };

// An rx_handler sees a burst of packets that are all on `dev`. It writes one
// result per packet and returns kNoDev; for ANOTHER it has set meta(m).dev
// to the new device. CONSUMED packets belong to the handler (it freed,
// queued or sent them). When every packet of the burst is ANOTHER to one
// device, frames and metadata otherwise untouched (a bond's active member),
// it may instead write nothing and return that device: the vector makes its
// next round there as it is, without a result to read per packet.
using RxHandlerFn = uint16_t (*)(Worker& w, Device& dev, void* ctx, rte_mbuf** pkts, uint16_t n,
                                 RxResult* res);

// Transmit a burst on dev. Owns the packets.
using XmitFn = void (*)(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n);

// A tap (ETH_P_ALL packet_type) sees every packet of a round (ingress) or of
// dev_queue_xmit (egress). It must not keep or modify the mbufs: copy.
using TapFn = void (*)(Worker& w, const Device& dev, void* ctx, rte_mbuf* const* pkts, uint16_t n,
                       Direction dir);

// A protocol handler (packet_type with a type). Owns the packets it is given
// (with refcnt raised when several handlers share a packet: copy before
// writing when rte_mbuf_refcnt_read(m) > 1).
using ProtoFn = void (*)(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n);

// An ingress/egress action (tc ingress / egress, mirred). Returns nothing;
// writes a verdict per packet.
enum class ActVerdict : uint8_t { ok = 0, shot = 1, stolen = 2 };
using ActionFn = void (*)(Worker& w, Device& dev, void* ctx, rte_mbuf** pkts, uint16_t n,
                          ActVerdict* verdicts);

struct Tap {
  TapFn fn;
  void* ctx;
  uint32_t id;
};
struct TapList {
  std::vector<Tap> taps;  // run order: newest first
};

struct PacketType {
  uint16_t type;  // ethertype, host order
  ProtoFn fn;
  void* ctx;
  uint32_t id;
  const char* name;
  StageId stage;  // show runtime: the handler's own stage (named like the handler)
};
struct PtypeList {
  std::vector<PacketType> entries;  // run order: newest first
};

struct Action {
  ActionFn fn;
  void* ctx;
  uint32_t id;
  int priority;
};
struct ActionList {
  std::vector<Action> actions;
};

// VID → sub-device index for one lower device and one tag protocol.
struct VlanTable {
  std::array<uint16_t, 4096> dev;
  VlanTable() { dev.fill(0xffff); }
};

struct Device {
  // Identity (fixed after creation).
  uint16_t index = 0;
  std::string name;
  DevKind kind = DevKind::port;
  uint16_t port_id = 0xffff;    // ethdev port for kind port
  uint16_t tx_queues = 0xffff;  // kind port: TX queues (worker w sends on queue w if w < this)
  uint16_t vlan_id = 0;         // for kind vlan
  uint16_t vlan_proto = 0x8100;
  uint16_t link = 0xffff;  // lower device (vlan) or 0xffff

  rte_ether_addr mac{};
  uint32_t mtu = 1500;  // 32 bits: lo has 65536
  bool promiscuous = true;

  std::atomic<bool> admin_up{true};
  std::atomic<bool> oper_up{true};
  std::atomic<uint16_t> master{0xffff};  // bond or bridge this device is enslaved to

  // rx_handler slot (netdev_rx_handler_register): at most one.
  std::atomic<RxHandlerFn> rx_handler{nullptr};
  std::atomic<void*> rx_handler_ctx{nullptr};
  const char* rx_handler_owner = nullptr;
  StageId rx_handler_stage = kStageNone;  // show runtime: "rx_handler/OWNER"
  // Set by the rx_handler's owner while its handler would return this device
  // for any burst, without looking at it (a bond's active member with no
  // recv_probe): a round with nothing else to do on this device — no tap,
  // no ingress action, no tag, no trace — goes straight on to that device's
  // round (netif.cc). kNoDev otherwise; clear_rx_handler resets it.
  std::atomic<uint16_t> rx_through{0xffff};

  XmitFn xmit = nullptr;
  void* xmit_ctx = nullptr;

  // Kernel-peer receive fix-ups (src/core/rx_csum.hh): set at port setup on
  // ports whose PMD hands over frames with the peer's offloads undone.
  rx_csum::RxFixup* rx_fixup = nullptr;

  std::atomic<const TapList*> taps{nullptr};
  std::atomic<const PtypeList*> ptype_specific{nullptr};
  std::atomic<const ActionList*> ingress{nullptr};
  std::atomic<const ActionList*> egress{nullptr};
  std::atomic<const VlanTable*> vlans_8021q{nullptr};
  std::atomic<const VlanTable*> vlans_8021ad{nullptr};

  bool up() const {
    return admin_up.load(std::memory_order_relaxed) && oper_up.load(std::memory_order_relaxed);
  }
  uint16_t vlan_dev(uint16_t proto, uint16_t vid) const {
    const VlanTable* t =
        (proto == 0x88a8 ? vlans_8021ad : vlans_8021q).load(std::memory_order_acquire);
    return t == nullptr ? 0xffff : t->dev[vid & 0xfff];
  }
};

}  // namespace sluice
