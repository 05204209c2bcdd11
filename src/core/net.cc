#include "core/net.hh"

#include "core/netif.hh"

#include <algorithm>

namespace sluice {

Net::Net(Rcu& rcu) : rcu_(rcu) {
  for (auto& d : devs_) d.store(nullptr, std::memory_order_relaxed);
  ptype_base_.store(new PtypeBase(), std::memory_order_release);
}

Net::~Net() {
  delete taps_.load();
  delete ptype_base_.load();
  for (auto& d : owned_) {
    delete d->taps.load();
    delete d->ptype_specific.load();
    delete d->ingress.load();
    delete d->egress.load();
    delete d->vlans_8021q.load();
    delete d->vlans_8021ad.load();
  }
}

Device* Net::find(std::string_view name) const {
  for (uint16_t i = 0; i < next_index_; i++) {
    Device* d = dev(i);
    if (d != nullptr && d->name == name) return d;
  }
  return nullptr;
}

std::vector<Device*> Net::devices() const {
  std::vector<Device*> v;
  for (uint16_t i = 0; i < next_index_; i++)
    if (Device* d = dev(i)) v.push_back(d);
  return v;
}

Device* Net::add_device(std::unique_ptr<Device> d) {
  std::lock_guard lk(mu_);
  if (next_index_ >= kMaxDevices || find(d->name) != nullptr) return nullptr;
  d->index = next_index_;
  Device* raw = d.get();
  owned_.push_back(std::move(d));
  devs_[next_index_].store(raw, std::memory_order_release);
  next_index_++;
  return raw;
}

Device* Net::add_vlan(Device& lower, const std::string& name, uint16_t vid, uint16_t proto,
                      std::string* error) {
  if (vid == 0 || vid >= 4095) {
    if (error) *error = "VLAN id must be 1..4094";
    return nullptr;
  }
  if (lower.vlan_dev(proto, vid) != 0xffff) {
    if (error) *error = "VLAN " + std::to_string(vid) + " already exists on " + lower.name;
    return nullptr;
  }
  auto d = std::make_unique<Device>();
  d->name = name;
  d->kind = DevKind::vlan;
  d->vlan_id = vid;
  d->vlan_proto = proto;
  d->link = lower.index;
  d->mac = lower.mac;
  d->mtu = lower.mtu;
  d->xmit = vlan_xmit;
  Device* v = add_device(std::move(d));
  if (v == nullptr) {
    if (error) *error = "device '" + name + "' exists or the device table is full";
    return nullptr;
  }
  std::lock_guard lk(mu_);
  auto& slot = proto == 0x88a8 ? lower.vlans_8021ad : lower.vlans_8021q;
  const VlanTable* old = slot.load();
  auto* t = old ? new VlanTable(*old) : new VlanTable();
  t->dev[vid] = v->index;
  rcu_.publish(slot, static_cast<const VlanTable*>(t));
  return v;
}

bool Net::unregister_device(Device& d) {
  std::lock_guard lk(mu_);
  if (dev(d.index) != &d) return false;
  if (d.kind == DevKind::vlan)
    if (Device* lower = dev(d.link)) {
      auto& slot = d.vlan_proto == 0x88a8 ? lower->vlans_8021ad : lower->vlans_8021q;
      if (const VlanTable* old = slot.load(); old != nullptr && old->dev[d.vlan_id] == d.index) {
        auto* t = new VlanTable(*old);
        t->dev[d.vlan_id] = 0xffff;
        rcu_.publish(slot, static_cast<const VlanTable*>(t));
      }
    }
  devs_[d.index].store(nullptr, std::memory_order_release);
  rcu_.synchronize();
  d.oper_up.store(false);
  return true;
}

bool Net::set_rx_handler(Device& d, RxHandlerFn fn, void* ctx, const char* owner) {
  std::lock_guard lk(mu_);
  if (d.rx_handler.load() != nullptr) return false;  // -EBUSY, as netdev_rx_handler_register
  d.rx_handler_ctx.store(ctx, std::memory_order_relaxed);
  d.rx_handler_owner = owner;
  d.rx_handler_stage = stage_register(std::string("rx_handler/") + (owner ? owner : "?"), 200);
  d.rx_handler.store(fn, std::memory_order_release);
  return true;
}

void Net::clear_rx_handler(Device& d) {
  std::lock_guard lk(mu_);
  d.rx_through.store(0xffff, std::memory_order_relaxed);
  d.rx_handler.store(nullptr, std::memory_order_release);
  rcu_.synchronize();  // no worker is still inside the old handler
  d.rx_handler_ctx.store(nullptr);
  d.rx_handler_owner = nullptr;
}

uint32_t Net::add_tap(Device* d, TapFn fn, void* ctx) {
  std::lock_guard lk(mu_);
  auto& slot = d ? d->taps : taps_;
  const TapList* old = slot.load();
  auto* next = new TapList();
  uint32_t id = next_id_++;
  next->taps.push_back(Tap{fn, ctx, id});  // list_add_rcu: newest at the head
  if (old) next->taps.insert(next->taps.end(), old->taps.begin(), old->taps.end());
  rcu_.publish(slot, static_cast<const TapList*>(next));
  return id;
}

namespace {
// Removes tap `id` from one list; false if it is not there.
bool remove_tap_from(Rcu& rcu, std::atomic<const TapList*>& slot, uint32_t id) {
  const TapList* old = slot.load();
  if (old == nullptr) return false;
  auto it = std::find_if(old->taps.begin(), old->taps.end(), [id](auto& t) { return t.id == id; });
  if (it == old->taps.end()) return false;
  const TapList* next = nullptr;
  if (old->taps.size() > 1) {
    auto* n = new TapList(*old);
    n->taps.erase(n->taps.begin() + (it - old->taps.begin()));
    next = n;
  }
  rcu.publish(slot, next);
  return true;
}
}  // namespace

bool Net::remove_tap(uint32_t id) {
  std::lock_guard lk(mu_);
  if (remove_tap_from(rcu_, taps_, id)) return true;
  for (uint16_t i = 0; i < next_index_; i++)
    if (Device* d = dev(i); d && remove_tap_from(rcu_, d->taps, id)) return true;
  return false;
}

uint32_t Net::add_ptype(uint16_t type, Device* d, ProtoFn fn, void* ctx, const char* name) {
  std::lock_guard lk(mu_);
  uint32_t id = next_id_++;
  PacketType pt{type, fn, ctx, id, name, stage_register(name ? name : "ptype", 410)};
  if (d == nullptr) {
    auto* next = new PtypeBase(*ptype_base_.load());
    auto& b = next->bucket[type & 15];
    b.insert(b.begin(), pt);
    rcu_.publish(ptype_base_, static_cast<const PtypeBase*>(next));
  } else {
    const PtypeList* old = d->ptype_specific.load();
    auto* next = new PtypeList();
    next->entries.push_back(pt);
    if (old) next->entries.insert(next->entries.end(), old->entries.begin(), old->entries.end());
    rcu_.publish(d->ptype_specific, static_cast<const PtypeList*>(next));
  }
  return id;
}

bool Net::remove_ptype(uint32_t id) {
  std::lock_guard lk(mu_);
  const PtypeBase* base = ptype_base_.load();
  for (unsigned b = 0; b < 16; b++) {
    auto& v = base->bucket[b];
    auto it = std::find_if(v.begin(), v.end(), [id](auto& e) { return e.id == id; });
    if (it != v.end()) {
      auto* next = new PtypeBase(*base);
      next->bucket[b].erase(next->bucket[b].begin() + (it - v.begin()));
      rcu_.publish(ptype_base_, static_cast<const PtypeBase*>(next));
      return true;
    }
  }
  for (uint16_t i = 0; i < next_index_; i++) {
    Device* d = dev(i);
    if (d == nullptr) continue;
    const PtypeList* old = d->ptype_specific.load();
    if (old == nullptr) continue;
    auto it = std::find_if(old->entries.begin(), old->entries.end(),
                           [id](auto& e) { return e.id == id; });
    if (it == old->entries.end()) continue;
    const PtypeList* next = nullptr;
    if (old->entries.size() > 1) {
      auto* n = new PtypeList(*old);
      n->entries.erase(n->entries.begin() + (it - old->entries.begin()));
      next = n;
    }
    rcu_.publish(d->ptype_specific, next);
    return true;
  }
  return false;
}

uint32_t Net::add_action(Device& d, Direction dir, ActionFn fn, void* ctx, int priority) {
  std::lock_guard lk(mu_);
  auto& slot = dir == Direction::egress ? d.egress : d.ingress;
  const ActionList* old = slot.load();
  auto* next = old ? new ActionList(*old) : new ActionList();
  uint32_t id = next_id_++;
  auto pos = std::find_if(next->actions.begin(), next->actions.end(),
                          [priority](const Action& a) { return a.priority > priority; });
  next->actions.insert(pos, Action{fn, ctx, id, priority});
  rcu_.publish(slot, static_cast<const ActionList*>(next));
  return id;
}

bool Net::remove_action(uint32_t id) {
  std::lock_guard lk(mu_);
  for (uint16_t i = 0; i < next_index_; i++) {
    Device* d = dev(i);
    if (d == nullptr) continue;
    for (auto* slot : {&d->ingress, &d->egress}) {
      const ActionList* old = slot->load();
      if (old == nullptr) continue;
      auto it = std::find_if(old->actions.begin(), old->actions.end(),
                             [id](auto& a) { return a.id == id; });
      if (it == old->actions.end()) continue;
      const ActionList* next = nullptr;
      if (old->actions.size() > 1) {
        auto* n = new ActionList(*old);
        n->actions.erase(n->actions.begin() + (it - old->actions.begin()));
        next = n;
      }
      rcu_.publish(*slot, next);
      return true;
    }
  }
  return false;
}

}  // namespace sluice
