// sluice plugin API: write a netfilter-style hook in C++ and load it into
// sluiced as a shared object (config `plugins:`), as a kernel module calls
// nf_register_net_hook(). This header is the whole contract between a plugin
// and the daemon: plain structs and function pointers (no DPDK, no STL, no
// exceptions across the boundary), versioned by kAbiVersion.
//
// A plugin exports
//     extern "C" int sluice_plugin_init(const sluice_host* host, const sluice_plugin_args* args);
// which registers its hooks with host->register_hook() and returns 0 (or a
// negative value to refuse loading). Hooks run on the worker lcores, burst-wise:
// one call for up to 32 packets of one point, one verdict per packet. They
// must not block or allocate per packet.
#pragma once

#include <climits>
#include <cstdint>

extern "C" {

// Hook points: family × point (spec §4.7, §5.1). The numbers are stable.
enum sluice_point : uint8_t {
  SLUICE_IPV4_PRE_ROUTING = 0,
  SLUICE_IPV4_LOCAL_IN,
  SLUICE_IPV4_FORWARD,
  SLUICE_IPV4_LOCAL_OUT,
  SLUICE_IPV4_POST_ROUTING,
  SLUICE_IPV6_PRE_ROUTING,
  SLUICE_IPV6_LOCAL_IN,
  SLUICE_IPV6_FORWARD,
  SLUICE_IPV6_LOCAL_OUT,
  SLUICE_IPV6_POST_ROUTING,
  SLUICE_BRIDGE_PRE_ROUTING,
  SLUICE_BRIDGE_LOCAL_IN,
  SLUICE_BRIDGE_FORWARD,
  SLUICE_BRIDGE_LOCAL_OUT,
  SLUICE_BRIDGE_POST_ROUTING,
  SLUICE_ARP_IN,
  SLUICE_ARP_OUT,
  SLUICE_ARP_FORWARD,
  SLUICE_POINT_COUNT
};

// Verdicts: Linux's NF_* values. A verdict word is (verdict | queue << 16 |
// bypass flag) for SLUICE_QUEUE, as NF_QUEUE_NR() builds it.
enum sluice_verdict : uint32_t {
  SLUICE_DROP = 0,    // freed, counted (drop reason netfilter_drop, the hook's drops)
  SLUICE_ACCEPT = 1,  // go on with the next hook, then the normal path
  SLUICE_STOLEN = 2,  // the hook owns the packet now (it must free or keep it)
  SLUICE_QUEUE = 3,   // to queue (verdict >> 16), answered later by a consumer
  SLUICE_REPEAT = 4,  // only as a consumer's answer: run the queueing hook again
  SLUICE_STOP = 5,    // accept and skip the rest of this point
};
inline constexpr uint32_t SLUICE_QUEUE_BYPASS = 0x8000;  // NF_VERDICT_FLAG_QUEUE_BYPASS
inline constexpr uint32_t sluice_queue_nr(uint16_t q, bool bypass = false) {
  return SLUICE_QUEUE | (uint32_t(q) << 16) | (bypass ? SLUICE_QUEUE_BYPASS : 0);
}

// Priorities (nf_ip_hook_priorities, nf_br_hook_priorities). Lower runs first.
enum sluice_priority : int {
  SLUICE_PRI_FIRST = INT_MIN,
  SLUICE_PRI_RAW = -300,
  SLUICE_PRI_CONNTRACK = -200,
  SLUICE_PRI_MANGLE = -150,
  SLUICE_PRI_NAT_DST = -100,
  SLUICE_PRI_FILTER = 0,
  SLUICE_PRI_SECURITY = 50,
  SLUICE_PRI_NAT_SRC = 100,
  SLUICE_PRI_LAST = INT_MAX,
};

// Opaque packet handle (an mbuf inside the daemon).
struct sluice_pkt;

// What one call of a hook sees: the point and the devices. Per packet the
// output device may differ (forward, post_routing): use host->out_dev().
struct sluice_hook_state {
  uint8_t point;         // sluice_point
  uint16_t worker;       // worker id (0..): index per-worker state with it
  uint16_t in;           // input device index, 0xffff = none
  uint16_t out;          // output device index when the same for all packets, else 0xffff
  const uint16_t* outs;  // per-packet output device, or nullptr
};

typedef void (*sluice_hook_fn)(const sluice_hook_state* st, void* priv, sluice_pkt** pkts,
                               uint16_t n, uint32_t* verdicts);

// Packet metadata (the sk_buff fields a hook may read or write).
struct sluice_pkt_meta {
  uint16_t dev;       // skb->dev
  uint16_t protocol;  // ethertype, host order
  uint8_t pkt_type;   // PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4
  uint8_t has_vlan;
  uint16_t vlan_tci;
  uint32_t mark;  // skb->mark (read/write through set_mark)
};

// A packet a hook queued, as a queue consumer reads it (nfnetlink_queue).
struct sluice_queued {
  sluice_pkt* pkt;
  uint32_t id;     // per queue, increasing
  uint16_t queue;  // 0..15
  uint8_t point;   // sluice_point where it was queued
  uint16_t in, out;
};

// The daemon's side: everything a plugin may call. Valid for the process's life.
struct sluice_host {
  uint32_t abi_version;  // = SLUICE_HOOK_ABI
  void* ctx;             // pass back as the first argument of register_hook
  // Registers fn at point/priority; name is shown by `show hooks`. Returns
  // an id > 0, or 0 on error (bad point, full point).
  uint32_t (*register_hook)(void* ctx, uint8_t point, int priority, const char* name,
                            sluice_hook_fn fn, void* priv);
  int (*unregister_hook)(void* ctx, uint32_t id);
  // Packet access. data(): the frame from the Ethernet header (first segment).
  const uint8_t* (*data)(const sluice_pkt* p);
  uint32_t (*len)(const sluice_pkt* p);        // bytes in the first segment
  uint32_t (*l3_offset)(const sluice_pkt* p);  // offset of the IP/ARP header in data()
  void (*meta)(const sluice_pkt* p, sluice_pkt_meta* out);
  void (*set_mark)(sluice_pkt* p, uint32_t mark);
  // A writable copy of the frame (copy-on-write when the packet is shared);
  // may replace *pp. Returns nullptr when no memory: then return DROP.
  uint8_t* (*writable)(sluice_pkt** pp);
  uint16_t (*out_dev)(const sluice_hook_state* st, uint16_t i);
  const char* (*dev_name)(uint16_t dev);  // "" for none/unknown
  // spdlog through the daemon (level: 0 trace … 2 info, 3 warn, 4 error).
  // Rate-limited by the daemon: at most `burst` messages per second per key.
  void (*log)(int level, const char* msg);
  bool (*ratelimit)(void* ctx, uint32_t key, uint32_t per_second);
  void (*free_pkt)(sluice_pkt* p);  // for STOLEN packets
  // ---- ABI 2: hook queue consumer (nfnetlink_queue), from any one thread per queue ----
  // One consumer per queue: 0, or -1 when q is bad or already bound.
  int (*queue_bind)(void* ctx, uint16_t q);
  int (*queue_unbind)(void* ctx, uint16_t q);  // what is queued stays for the next reader
  // Up to n packets waiting on q (never blocks). Each must get one verdict.
  unsigned (*queue_read)(void* ctx, uint16_t q, sluice_queued* out, unsigned n);
  // SLUICE_ACCEPT (the rest of the point's hooks, then on), SLUICE_STOP (on,
  // skipping the rest), SLUICE_REPEAT (the queueing hook again), SLUICE_DROP,
  // SLUICE_STOLEN (the consumer keeps the packet; free it with free_pkt).
  // The packet may have been changed in between (writable(), set_mark()).
  void (*queue_verdict)(void* ctx, const sluice_queued* qp, uint32_t verdict);
};

// From the `plugins:` entry.
struct sluice_plugin_args {
  uint8_t point;  // the entry's point (SLUICE_POINT_COUNT when not given)
  int priority;   // the entry's priority
  const char* path;
  const char* args;  // ABI 2: the entry's `args:` text ("" when none)
};

#define SLUICE_HOOK_ABI 2u  // 2: the queue consumer functions
#define SLUICE_PLUGIN_INIT "sluice_plugin_init"
typedef int (*sluice_plugin_init_fn)(const sluice_host* host, const sluice_plugin_args* args);
// Optional: `extern "C" void sluice_plugin_fini(void)`, called at shutdown
// while the ports still run (stop threads; answer what you hold), before
// the plugin is unloaded. A host never runs a plugin whose ABI is newer than
// its own; a plugin should accept any host abi_version >= the one it needs.
#define SLUICE_PLUGIN_FINI "sluice_plugin_fini"
typedef void (*sluice_plugin_fini_fn)(void);

}  // extern "C"
