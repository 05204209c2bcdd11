// Example sluice plugin: log the device names of TCP packets to or from port
// 9091, like the classic "nfqlo" netfilter example. Registered at
// ipv4/pre_routing (in device) and ipv4/local_out (out device unknown before
// routing: "-"), or at the configured point only when `point:` is given.
// Logging is rate-limited by the daemon (5 lines a second); every match is
// also counted, and the packet's mark gets 0x9091 so later hooks and rules
// can see that the plugin ran. Verdict: always accept.
//
//   plugins:
//     - {path: build/examples/plugins/libsluice_nfqlo.so, priority: -150}
#include <atomic>
#include <cstdio>

#include "sluice/hook.hh"

namespace {

const sluice_host* g_host = nullptr;
std::atomic<unsigned long long> g_seen{0};

bool is_9091(const uint8_t* d, uint32_t len, uint32_t l3) {
  if (len < l3 + 20) return false;
  const uint8_t* ip = d + l3;
  if ((ip[0] >> 4) != 4 || ip[9] != 6) return false;
  unsigned hl = (ip[0] & 0xf) * 4u;
  if (((ip[6] & 0x1f) << 8 | ip[7]) != 0 || len < l3 + hl + 4) return false;  // first fragment only
  const uint8_t* tcp = ip + hl;
  unsigned sport = tcp[0] << 8 | tcp[1], dport = tcp[2] << 8 | tcp[3];
  return sport == 9091 || dport == 9091;
}

void hook(const sluice_hook_state* st, void*, sluice_pkt** pkts, uint16_t n, uint32_t* verdicts) {
  for (uint16_t i = 0; i < n; i++) {
    verdicts[i] = SLUICE_ACCEPT;
    const uint8_t* d = g_host->data(pkts[i]);
    if (!is_9091(d, g_host->len(pkts[i]), g_host->l3_offset(pkts[i]))) continue;
    g_seen++;
    g_host->set_mark(pkts[i], 0x9091);
    if (!g_host->ratelimit(g_host->ctx, 0x9091, 5)) continue;
    sluice_pkt_meta m;
    g_host->meta(pkts[i], &m);
    uint16_t out = g_host->out_dev(st, i);
    char line[160];
    std::snprintf(line, sizeof line, "nfqlo: %s tcp port 9091: in=%s out=%s len=%u",
                  st->point == SLUICE_IPV4_PRE_ROUTING ? "pre_routing" : "local_out",
                  st->in != 0xffff ? g_host->dev_name(st->in) : "-",
                  out != 0xffff ? g_host->dev_name(out) : "-", g_host->len(pkts[i]));
    g_host->log(2, line);
  }
}

}  // namespace

extern "C" {

// How many 9091 packets the plugin saw (tests read it with dlsym).
unsigned long long nfqlo_seen() {
  return g_seen.load();
}

int sluice_plugin_init(const sluice_host* host, const sluice_plugin_args* args) {
  if (host->abi_version < 1) return -1;  // needs ABI 1 only
  g_host = host;
  if (args->point != SLUICE_POINT_COUNT)
    return host->register_hook(host->ctx, args->point, args->priority, "nfqlo", hook, nullptr) ? 0
                                                                                               : -2;
  if (!host->register_hook(host->ctx, SLUICE_IPV4_PRE_ROUTING, args->priority, "nfqlo", hook,
                           nullptr))
    return -2;
  if (!host->register_hook(host->ctx, SLUICE_IPV4_LOCAL_OUT, args->priority, "nfqlo", hook,
                           nullptr))
    return -2;
  return 0;
}

}  // extern "C"
