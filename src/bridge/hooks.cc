#include "bridge/hooks.hh"

#include <algorithm>

#include "core/rcu.hh"
#include "core/worker.hh"

namespace sluice::bridge {

const char* hook_point_name(HookPoint p) {
  switch (p) {
    case HookPoint::pre_routing:
      return "bridge/pre_routing";
    case HookPoint::local_in:
      return "bridge/local_in";
    case HookPoint::forward:
      return "bridge/forward";
    case HookPoint::local_out:
      return "bridge/local_out";
    case HookPoint::post_routing:
      return "bridge/post_routing";
    case HookPoint::count_:
      break;
  }
  return "?";
}

Hooks::~Hooks() {
  for (auto& l : lists_) delete l.load();
}

uint32_t Hooks::add(HookPoint p, int priority, std::string name, HookFn fn, void* priv) {
  std::lock_guard<std::mutex> g(mu_);
  auto& slot = lists_[static_cast<unsigned>(p)];
  auto* next = new HookList;
  if (const HookList* cur = slot.load()) next->hooks = cur->hooks;
  uint32_t id = next_id_++;
  // Before the first entry of the same or a higher priority: equal priorities LIFO.
  auto it = std::find_if(next->hooks.begin(), next->hooks.end(),
                         [&](const Hook& h) { return h.priority >= priority; });
  next->hooks.insert(it, Hook{priority, id, fn, priv, std::move(name)});
  rcu_.publish(slot, static_cast<const HookList*>(next));
  return id;
}

bool Hooks::remove(uint32_t id) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& slot : lists_) {
    const HookList* cur = slot.load();
    if (cur == nullptr) continue;
    auto it = std::find_if(cur->hooks.begin(), cur->hooks.end(),
                           [&](const Hook& h) { return h.id == id; });
    if (it == cur->hooks.end()) continue;
    const HookList* next = nullptr;
    if (cur->hooks.size() > 1) {
      auto* n = new HookList(*cur);
      n->hooks.erase(n->hooks.begin() + (it - cur->hooks.begin()));
      next = n;
    }
    rcu_.publish(slot, next);
    return true;
  }
  return false;
}

uint16_t run_hooks(Worker& w, const HookList* l, const HookCtx& ctx, rte_mbuf** pkts, uint16_t n,
                   uint16_t drop_dev, rte_mbuf** broute, uint16_t* nbroute, uint32_t after_id,
                   int after_pri) {
  if (l == nullptr) return n;
  size_t start = 0;
  if (after_id != 0) {
    auto it = std::find_if(l->hooks.begin(), l->hooks.end(),
                           [&](const Hook& h) { return h.id == after_id; });
    if (it != l->hooks.end())
      start = static_cast<size_t>(it - l->hooks.begin()) + 1;
    else
      while (start < l->hooks.size() && l->hooks[start].priority <= after_pri) start++;
  }
  // Packets that saw STOP leave the walk; they rejoin the survivors in order.
  uint16_t idx[kBurst];
  for (uint16_t i = 0; i < n; i++) idx[i] = i;
  rte_mbuf* stopped[kBurst];
  uint16_t stopped_idx[kBurst];
  uint16_t ns = 0;
  for (size_t hi = start; hi < l->hooks.size() && n != 0; hi++) {
    const Hook& h = l->hooks[hi];
    Verdict v[kBurst];
    h.fn(w, ctx, h.priv, pkts, n, v);
    uint16_t k = 0;
    for (uint16_t i = 0; i < n; i++) {
      switch (v[i]) {
        case Verdict::accept:
          idx[k] = idx[i];
          pkts[k++] = pkts[i];
          break;
        case Verdict::stop:
          stopped_idx[ns] = idx[i];
          stopped[ns++] = pkts[i];
          break;
        case Verdict::drop:
          w.drop(pkts[i], drop_dev, DropReason::netfilter_drop);
          break;
        case Verdict::stolen:
          break;
        case Verdict::broute:
          if (broute != nullptr) {
            broute[(*nbroute)++] = pkts[i];
          } else {
            idx[k] = idx[i];
            pkts[k++] = pkts[i];
          }
          break;
      }
    }
    n = k;
  }
  if (ns == 0) return n;
  // Merge the two ordered runs back into arrival order.
  rte_mbuf* out[kBurst];
  uint16_t a = 0, b = 0, m = 0;
  while (a < n || b < ns) {
    if (b == ns || (a < n && idx[a] < stopped_idx[b]))
      out[m++] = pkts[a++];
    else
      out[m++] = stopped[b++];
  }
  std::copy(out, out + m, pkts);
  return m;
}

}  // namespace sluice::bridge
