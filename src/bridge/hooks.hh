// Bridge hook points: the places where Linux runs NF_HOOK(NFPROTO_BRIDGE, …)
// (spec §4.7), as priority-ordered lists of C++ callbacks that the hooks
// feature (ebtables-like rules) and tests register.
//
//   pre_routing   br_handle_frame, port in LEARNING/FORWARDING   in = port
//   local_in      br_pass_frame_up (in = port, dev = bridge), and the
//                 link-local branch of br_handle_frame (in = port, no bridge)
//   forward       __br_forward of a bridged copy                  in, out = ports
//   local_out     __br_forward of a frame sent by the bridge      out = port
//   post_routing  br_forward_finish, every copy that leaves       out = port
//
// Order: ascending priority (nf_br_hook_priorities: FIRST = INT_MIN,
// NAT_DST_BRIDGED −300, FILTER_BRIDGED −200, BRNF 0, NAT_DST_OTHER 100,
// FILTER_OTHER 200, NAT_SRC 300, LAST = INT_MAX); equal priorities run
// newest first, as 6.x does (spec §5.3). Each list is an immutable vector
// published under RCU: workers read it without locks; an empty point costs
// one load per burst.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <rte_mbuf.h>

namespace sluice {
struct Worker;
struct Device;
class Rcu;
}  // namespace sluice

namespace sluice::bridge {

enum class HookPoint : uint8_t { pre_routing, local_in, forward, local_out, post_routing, count_ };
inline constexpr unsigned kNumHookPoints = static_cast<unsigned>(HookPoint::count_);
const char* hook_point_name(HookPoint p);  // "bridge/pre_routing", …

enum HookPriority : int {
  kPriFirst = INT_MIN,
  kPriNatDstBridged = -300,
  kPriFilterBridged = -200,
  kPriBrnf = 0,
  kPriNatDstOther = 100,
  kPriFilterOther = 200,
  kPriNatSrc = 300,
  kPriLast = INT_MAX,
};

// accept: next hook; drop: freed by the bridge (drop reason netfilter_drop);
// stolen: the hook owns the packet now (also: queued to a hook queue);
// broute (pre_routing only): leave the bridge, the frame goes up the port's
// own stack (ebtables broute "DROP"); stop: accept and skip the rest of the
// point (NF_STOP).
enum class Verdict : uint8_t { accept, drop, stolen, broute, stop };

struct HookCtx {
  HookPoint point;
  const Device* in;      // nullptr for local_out
  const Device* out;     // nullptr for pre_routing / local_in
  const Device* bridge;  // nullptr for the link-local local_in
};

// All packets of one call share ctx. Write one verdict per packet.
using HookFn = void (*)(Worker& w, const HookCtx& ctx, void* priv, rte_mbuf** pkts, uint16_t n,
                        Verdict* verdicts);

struct Hook {
  int priority;
  uint32_t id;
  HookFn fn;
  void* priv;
  std::string name;
};
struct HookList {
  std::vector<Hook> hooks;  // run order
};

class Hooks {
 public:
  explicit Hooks(Rcu& rcu) : rcu_(rcu) {}
  ~Hooks();
  // Control thread (or tests). Returns an id for remove().
  uint32_t add(HookPoint p, int priority, std::string name, HookFn fn, void* priv);
  bool remove(uint32_t id);
  const HookList* list(HookPoint p) const {
    return lists_[static_cast<unsigned>(p)].load(std::memory_order_acquire);
  }

 private:
  Rcu& rcu_;
  std::atomic<const HookList*> lists_[kNumHookPoints]{};
  uint32_t next_id_ = 1;
  std::mutex mu_;
};

// Runs the chain of ctx.point over pkts[0..n). Survivors are compacted into
// pkts in their order (return value = their count); dropped ones are freed
// (netfilter_drop counted on drop_dev); brouted ones are appended to
// broute[*nbroute] (only when broute != nullptr; otherwise broute counts as
// accept). after_id != 0: start after the hook with that id (a queued
// packet resumed), or after after_pri when that hook is gone.
uint16_t run_hooks(Worker& w, const HookList* l, const HookCtx& ctx, rte_mbuf** pkts, uint16_t n,
                   uint16_t drop_dev, rte_mbuf** broute = nullptr, uint16_t* nbroute = nullptr,
                   uint32_t after_id = 0, int after_pri = INT_MIN);

// Where a packet goes on after the hooks of point p accepted it late (a hook
// queue consumer's accept: the okfn of NF_HOOK). in/out: device indexes of
// the walk (local_in: out = the bridge device, or kNoDev for a link-local
// frame). Worker context; owns the packets (br_input.cc).
void resume(Worker& w, HookPoint p, rte_mbuf** pkts, uint16_t n, uint16_t in, uint16_t out);

}  // namespace sluice::bridge
