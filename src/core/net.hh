// Net: the network namespace of one sluiced — its devices, the global tap
// list (netns ptype_all), and the protocol table (ptype_base). Workers read
// it lock-free; the control thread changes it through the methods below,
// which publish new immutable lists under RCU.
//
// This is the C++ API features and tests use to plug into the receive path:
//   add_device()          register_netdevice
//   set_rx_handler()      netdev_rx_handler_register / _unregister
//   add_tap()             dev_add_pack(ETH_P_ALL) (dev = nullptr: every device)
//   add_ptype()           dev_add_pack(type) (dev = nullptr: any device)
//   add_action()          tc ingress / egress filters
//   add_vlan()            register_vlan_dev
//   unplug_port()         unregister_netdevice of a hot-unplugged NIC
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/device.hh"
#include "core/rcu.hh"
#include "core/trace.hh"

namespace sluice {

inline constexpr uint16_t kMaxDevices = 4096;

struct PtypeBase {
  std::array<std::vector<PacketType>, 16> bucket;  // ethertype & 15, newest first (PTYPE_HASH_SIZE)
};

class Net {
 public:
  explicit Net(Rcu& rcu);
  ~Net();
  Net(const Net&) = delete;
  Net& operator=(const Net&) = delete;

  Rcu& rcu() { return rcu_; }

  // The packet trace (src/core/trace.hh): armed by `trace add`, written by
  // the workers for marked packets only.
  TraceStore trace;

  // ---- readers (any thread) ----
  Device* dev(uint16_t index) const {
    return index < kMaxDevices ? devs_[index].load(std::memory_order_acquire) : nullptr;
  }
  const TapList* taps() const { return taps_.load(std::memory_order_acquire); }
  const PtypeBase* ptype_base() const { return ptype_base_.load(std::memory_order_acquire); }
  Device* find(std::string_view name) const;
  uint16_t device_count() const { return next_index_; }  // indices are [0, device_count())
  std::vector<Device*> devices() const;                  // in index order

  // ---- writers (control thread only) ----
  // Takes ownership; assigns the index. Returns nullptr if the name exists or the table is full.
  Device* add_device(std::unique_ptr<Device> d);
  // Adds a VLAN sub-device `name` on `lower` (errors: existing name, VID in use, bad VID).
  Device* add_vlan(Device& lower, const std::string& name, uint16_t vid, uint16_t proto,
                   std::string* error);
  // A port hot-unplugged by a reload (src/control/reload_ports.cc): its slot
  // empties (dev(index) is nullptr, find() no longer sees the name, a later
  // port may take the name with a new index) and it sends nothing more. The
  // object stays owned, so a stale pointer to it stays valid; its index is
  // never reused. Call with the workers paused and nothing left using it
  // (handlers, VLANs, masters). False if it is not a registered port.
  bool unplug_port(Device& d);
  bool set_rx_handler(Device& d, RxHandlerFn fn, void* ctx, const char* owner);
  void clear_rx_handler(Device& d);

  // dev == nullptr: the namespace-wide list. Returns an id for removal.
  uint32_t add_tap(Device* d, TapFn fn, void* ctx);
  bool remove_tap(uint32_t id);
  uint32_t add_ptype(uint16_t type, Device* d, ProtoFn fn, void* ctx, const char* name);
  bool remove_ptype(uint32_t id);
  uint32_t add_action(Device& d, Direction dir, ActionFn fn, void* ctx, int priority);
  bool remove_action(uint32_t id);

 private:
  Rcu& rcu_;
  std::array<std::atomic<Device*>, kMaxDevices> devs_{};
  std::vector<std::unique_ptr<Device>> owned_;
  uint16_t next_index_ = 0;
  std::atomic<const TapList*> taps_{nullptr};
  std::atomic<const PtypeBase*> ptype_base_{nullptr};
  uint32_t next_id_ = 1;
  std::mutex mu_;  // serialises writers (control thread and tests)
};

}  // namespace sluice
