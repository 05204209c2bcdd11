// Packet trace commands (the store and record sites: src/core/trace.hh):
//   trace add N [DEV] [FILTER]   mark the next N packets received (on DEV; matching
//                                FILTER, a pcap-filter(7) expression)
//   trace stop                   stop marking (what was traced stays)
//   show trace [summary]         each packet's path and fate / packets grouped by path
//   show trace packet N          one packet
//   clear trace                  forget every traced packet
//
// The path is told in the kernel's words: netif_receive_skb rounds,
// rx_handler results (RX_HANDLER_ANOTHER …), deliver_skb to a protocol
// handler, the hook points, routing, dev_queue_xmit. The fate is the last
// thing that happened to the packet: `sent DEV`, `delivered`, `dropped:
// REASON` (SKB_DROP_REASON spelling; the stage and device are beside it),
// `queued N`, `consumed by STAGE`.
#include <arpa/inet.h>

#include <charconv>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "capture/filter.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/feature.hh"
#include "core/format.hh"
#include "core/trace.hh"

namespace sluice {
namespace {

using nlohmann::json;

// The filter of the armed trace; replaced (workers paused) by the next `trace add`.
std::unique_ptr<PacketFilter> g_filter;

bool filter_match(const void* ctx, const rte_mbuf* m) {
  return static_cast<const PacketFilter*>(ctx)->match(m);
}

std::string dev_name(Dataplane& dp, uint16_t idx) {
  if (idx == kNoDev) return "";
  const Device* d = dp.net.dev(idx);
  return d != nullptr ? d->name : "#" + std::to_string(idx);
}

std::string ip4(const void* p) {
  char s[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, p, s, sizeof s) != nullptr ? s : "?";
}

std::string ip6(const uint8_t* b) {
  char s[INET6_ADDRSTRLEN];
  return inet_ntop(AF_INET6, b, s, sizeof s) != nullptr ? s : "?";
}

std::string l4(uint8_t proto, const uint8_t* p, size_t avail) {
  char s[96];
  switch (proto) {
    case IPPROTO_TCP:
      if (avail >= 14) {
        std::snprintf(s, sizeof(s), "TCP %u > %u flags 0x%02x", p[0] << 8 | p[1], p[2] << 8 | p[3],
                      p[13]);
        return s;
      }
      return "TCP";
    case IPPROTO_UDP:
      if (avail >= 4) {
        std::snprintf(s, sizeof(s), "UDP %u > %u", p[0] << 8 | p[1], p[2] << 8 | p[3]);
        return s;
      }
      return "UDP";
    case IPPROTO_ICMP:
      if (avail >= 1) {
        const char* t = p[0] == 8 ? "echo request" : p[0] == 0 ? "echo reply" : nullptr;
        if (t) return std::string("ICMP ") + t;
        return "ICMP type " + std::to_string(p[0]);
      }
      return "ICMP";
    case IPPROTO_ICMPV6:
      if (avail >= 1) {
        switch (p[0]) {
          case 128:
            return "ICMPv6 echo request";
          case 129:
            return "ICMPv6 echo reply";
          case 135:
            return "ICMPv6 neighbor solicitation";
          case 136:
            return "ICMPv6 neighbor advertisement";
          default:
            return "ICMPv6 type " + std::to_string(p[0]);
        }
      }
      return "ICMPv6";
    default:
      return "proto " + std::to_string(proto);
  }
}

// One line about the frame as it was marked: MACs, tags, L3/L4 header.
std::string summary(const TracePacket& p) {
  const uint8_t* b = p.head;
  size_t n = p.head_len;
  if (n < 14) return std::to_string(p.len) + " bytes";
  std::string s = mac_to_string(*reinterpret_cast<const rte_ether_addr*>(b + 6)) + " > " +
                  mac_to_string(*reinterpret_cast<const rte_ether_addr*>(b));
  if (p.has_vlan) s += ", vlan " + std::to_string(p.vlan_tci & 0xfff) + " (stripped)";
  size_t off = 12;
  uint16_t et = static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
  while ((et == 0x8100 || et == 0x88a8) && off + 6 <= n) {
    s += ", vlan " + std::to_string((b[off + 2] << 8 | b[off + 3]) & 0xfff);
    off += 4;
    et = static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
  }
  off += 2;
  const uint8_t* l3 = b + off;
  size_t avail = n > off ? n - off : 0;
  char e[16];
  if (et == 0x0800 && avail >= 20) {
    size_t ihl = (l3[0] & 0xf) * 4u;
    s += ", IPv4 " + ip4(l3 + 12) + " > " + ip4(l3 + 16) + " ttl " + std::to_string(l3[8]) + " " +
         l4(l3[9], l3 + ihl, avail > ihl ? avail - ihl : 0);
  } else if (et == 0x86dd && avail >= 40) {
    s += ", IPv6 " + ip6(l3 + 8) + " > " + ip6(l3 + 24) + " hlim " + std::to_string(l3[7]) + " " +
         l4(l3[6], l3 + 40, avail - 40);
  } else if (et == 0x0806 && avail >= 28) {
    uint16_t op = static_cast<uint16_t>(l3[6] << 8 | l3[7]);
    if (op == 1)
      s += ", ARP who-has " + ip4(l3 + 24) + " tell " + ip4(l3 + 14);
    else if (op == 2)
      s += ", ARP reply " + ip4(l3 + 14) + " is-at " +
           mac_to_string(*reinterpret_cast<const rte_ether_addr*>(l3 + 8));
    else
      s += ", ARP op " + std::to_string(op);
  } else {
    std::snprintf(e, sizeof(e), "0x%04x", et);
    s += std::string(", ethertype ") + e;
  }
  return s + ", " + std::to_string(p.len) + " bytes";
}

// The fate as CLI.md spells it: "sent eth1" | "delivered" | "dropped: REASON" (and
// "queued N", "consumed by STAGE", "stolen by STAGE", "in flight").
std::string fate_text(Dataplane& dp, const TracePacket& p) {
  switch (p.fate.load(std::memory_order_acquire)) {
    case TraceFate::none:
      return "in flight";
    case TraceFate::sent:
      return "sent " + dev_name(dp, p.fate_dev);
    case TraceFate::delivered:
      return "delivered";
    case TraceFate::dropped:
      return std::string("dropped: ") + drop_reason_name(p.reason);
    case TraceFate::queued:
      return std::string("queued ") + p.fate_detail;
    case TraceFate::consumed:
      return std::string("consumed by ") + (p.fate_stage ? p.fate_stage : "?");
    case TraceFate::stolen:
      return std::string("stolen by ") + (p.fate_stage ? p.fate_stage : "?");
  }
  return "?";
}

// The fate with where it happened, for the text output.
std::string fate_long(Dataplane& dp, const TracePacket& p) {
  std::string s = fate_text(dp, p);
  TraceFate f = p.fate.load(std::memory_order_acquire);
  std::string dev = dev_name(dp, p.fate_dev);
  if (f == TraceFate::dropped) {
    s += std::string(" at ") + (p.fate_stage ? p.fate_stage : "?");
    if (!dev.empty()) s += " on " + dev;
    s += std::string(" (") + drop_reason_text(p.reason) + ")";
  } else if (f == TraceFate::delivered) {
    if (!dev.empty()) s += " " + dev;
    if (p.fate_stage) s += std::string(" by ") + p.fate_stage;
  } else if (f == TraceFate::consumed && !dev.empty()) {
    s += " on " + dev;
  }
  if (p.fate_detail[0] != '\0' && f != TraceFate::queued) s += std::string(": ") + p.fate_detail;
  if (p.truncated) s += " (path truncated at " + std::to_string(kTraceMaxRecs) + " records)";
  return s;
}

std::string proto_hex(uint16_t p) {
  char s[8];
  std::snprintf(s, sizeof s, "0x%04x", p);
  return s;
}

json rec_json(Dataplane& dp, const TraceRec& r, uint64_t t0, double ns_per_tick) {
  json j = {{"stage", r.stage ? r.stage : "?"},
            {"dev", dev_name(dp, r.dev)},
            {"decision", r.what ? r.what : ""},
            {"pkt_type", pkt_type_name(static_cast<PktType>(r.pkt_type))},
            {"protocol", proto_hex(r.protocol)},
            {"t_ns", static_cast<uint64_t>(static_cast<double>(r.tsc - t0) * ns_per_tick)}};
  if (r.detail[0] != '\0') j["detail"] = r.detail;
  if (r.dev2 != kNoDev) j["to"] = dev_name(dp, r.dev2);
  if (r.has_vlan) j["vlan"] = r.vlan_tci & 0xfff;
  return j;
}

uint16_t nrecs(const TracePacket& p) {
  uint16_t n = p.nrec.load(std::memory_order_acquire);
  return n > kTraceMaxRecs ? kTraceMaxRecs : n;
}

json packet_json(Dataplane& dp, uint32_t number, const TracePacket& p) {
  const double ns = 1e9 / static_cast<double>(rte_get_tsc_hz());
  uint16_t n = nrecs(p);
  uint64_t t0 = n ? p.rec[0].tsc : 0;
  json path = json::array();
  for (uint16_t i = 0; i < n; i++) path.push_back(rec_json(dp, p.rec[i], t0, ns));
  TraceFate f = p.fate.load(std::memory_order_acquire);
  json j = {{"packet", number},
            {"worker", p.worker},
            {"dev", dev_name(dp, p.in_dev)},
            {"len", p.len},
            {"summary", summary(p)},
            {"parent", p.parent ? json(p.parent) : json(nullptr)},
            {"path", std::move(path)},
            {"fate", fate_text(dp, p)},
            {"fate_kind", trace_fate_name(f)},
            {"fate_dev", p.fate_dev != kNoDev ? json(dev_name(dp, p.fate_dev)) : json(nullptr)},
            {"fate_stage", p.fate_stage ? json(p.fate_stage) : json(nullptr)},
            {"truncated", p.truncated}};
  if (f == TraceFate::dropped) j["reason"] = drop_reason_name(p.reason);
  if (p.fate_detail[0] != '\0') j["fate_detail"] = p.fate_detail;
  return j;
}

std::string packet_text(Dataplane& dp, uint32_t number, const TracePacket& p) {
  const double ns = 1e9 / static_cast<double>(rte_get_tsc_hz());
  std::string s = "Packet " + std::to_string(number);
  if (p.parent) s += " (copy of packet " + std::to_string(p.parent) + ")";
  s += ", worker " + std::to_string(p.worker) + ", on " + dev_name(dp, p.in_dev) + ": " +
       summary(p) + "\n";
  uint16_t n = nrecs(p);
  uint64_t t0 = n ? p.rec[0].tsc : 0;
  TextTable t({{"#", TextTable::right},
               {"TIME", TextTable::right},
               {"STAGE"},
               {"DEV"},
               {"DECISION"},
               {"DETAIL"}});
  for (uint16_t i = 0; i < n; i++) {
    const TraceRec& r = p.rec[i];
    std::string detail = r.detail;
    if (r.dev2 != kNoDev)
      detail = "→ " + dev_name(dp, r.dev2) + (detail.empty() ? "" : ", " + detail);
    std::string key =
        std::string(pkt_type_name(static_cast<PktType>(r.pkt_type))) + " " + proto_hex(r.protocol);
    if (r.has_vlan) key += " vlan " + std::to_string(r.vlan_tci & 0xfff);
    detail += (detail.empty() ? "[" : " [") + key + "]";
    char tm[32];
    std::snprintf(tm, sizeof(tm), "%.2fus", static_cast<double>(r.tsc - t0) * ns / 1000.0);
    t.add({std::to_string(i + 1), tm, r.stage ? r.stage : "?", dev_name(dp, r.dev),
           r.what ? r.what : "", detail});
  }
  s += t.str(2);
  s += "  fate: " + fate_long(dp, p) + "\n";
  return s;
}

bool parse_count(const std::string& s, uint32_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

constexpr const char* kAddUsage = "trace add N [DEV] [FILTER]";

CmdResult trace_add(Dataplane& dp, const std::vector<std::string>& args) {
  uint32_t n = 0;
  if (args.empty() || !parse_count(args[0], &n) || n == 0)
    return CmdResult::error(std::string("usage: ") + kAddUsage + " (N: packets to trace, ≥ 1)");
  TraceStore& ts = dp.net.trace;
  const uint32_t room = kTraceMaxPackets - ts.used();
  if (n > room)
    return CmdResult::error("trace add: room for " + std::to_string(room) + " more packets (of " +
                            std::to_string(kTraceMaxPackets) + "); `clear trace` first");
  size_t i = 1;
  uint16_t dev = kNoDev;
  std::string dev_text = "any device";
  if (i < args.size()) {
    if (Device* d = dp.net.find(args[i])) {
      dev = d->index;
      dev_text = d->name;
      i++;
    }
  }
  std::string expr;
  for (; i < args.size(); i++) expr += (expr.empty() ? "" : " ") + args[i];
  std::unique_ptr<PacketFilter> f;
  if (!expr.empty()) {
    std::string err;
    f = PacketFilter::compile(expr, &err);
    if (!f) return CmdResult::error("trace add: bad filter '" + expr + "': " + err);
  }
  if (!dp.pause_workers()) return CmdResult::error("trace add: the workers did not pause");
  g_filter = std::move(f);
  ts.arm(n, dev, g_filter ? filter_match : nullptr, g_filter.get());
  dp.resume_workers();
  CmdResult r;
  r.text = "tracing the next " + std::to_string(n) + " packet(s) received on " + dev_text +
           (expr.empty() ? "" : " matching '" + expr + "'") + "\n";
  r.json = {{"armed", n},
            {"dev", dev == kNoDev ? json(nullptr) : json(dev_text)},
            {"filter", expr.empty() ? json(nullptr) : json(expr)}};
  return r;
}

CmdResult trace_stop(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return CmdResult::error("usage: trace stop");
  dp.net.trace.disarm();
  CmdResult r;
  r.text = "trace stopped: " + std::to_string(dp.net.trace.used()) + " packet(s) traced\n";
  r.json = {{"traced", dp.net.trace.used()}};
  return r;
}

CmdResult clear_trace(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return CmdResult::error("usage: clear trace");
  if (!dp.pause_workers()) return CmdResult::error("clear trace: the workers did not pause");
  dp.net.trace.clear();
  g_filter.reset();
  dp.resume_workers();
  CmdResult r;
  r.text = "trace cleared\n";
  r.json = {{"cleared", "trace"}};
  return r;
}

std::string status_line(Dataplane& dp) {
  const TraceStore& ts = dp.net.trace;
  std::string s = std::to_string(ts.used()) + " packet(s) traced";
  if (ts.armed())
    s += ", " + std::to_string(ts.remaining()) + " more to mark on " +
         (ts.dev_filter() == kNoDev ? std::string("any device") : dev_name(dp, ts.dev_filter())) +
         (g_filter ? " matching '" + g_filter->expr() + "'" : "");
  return s + "\n";
}

// Groups by path: the sequence of (stage, device, decision) and the fate.
CmdResult show_trace_summary(Dataplane& dp) {
  struct Group {
    std::vector<uint32_t> packets;
    json path;
    std::string fate;
    std::string text;
  };
  std::map<std::string, size_t> index;
  std::vector<Group> groups;
  const TraceStore& ts = dp.net.trace;
  for (uint32_t k = 1; k <= ts.used(); k++) {
    const TracePacket* p = ts.packet(k);
    std::string key, text;
    json path = json::array();
    for (uint16_t i = 0, n = nrecs(*p); i < n; i++) {
      const TraceRec& r = p->rec[i];
      std::string step = std::string(r.stage ? r.stage : "?") + " " + dev_name(dp, r.dev) + " " +
                         (r.what ? r.what : "");
      if (r.dev2 != kNoDev) step += " → " + dev_name(dp, r.dev2);
      key += step + "\n";
      text += (text.empty() ? "" : " | ") + step;
      path.push_back({{"stage", r.stage ? r.stage : "?"},
                      {"dev", dev_name(dp, r.dev)},
                      {"decision", r.what ? r.what : ""}});
    }
    std::string fate = fate_text(dp, *p);
    key += fate;
    auto [it, fresh] = index.emplace(key, groups.size());
    if (fresh) groups.push_back(Group{{}, std::move(path), fate, std::move(text)});
    groups[it->second].packets.push_back(k);
  }
  CmdResult r;
  r.json = json::array();
  r.text = status_line(dp);
  for (const Group& g : groups) {
    r.json.push_back(
        {{"count", g.packets.size()}, {"packets", g.packets}, {"path", g.path}, {"fate", g.fate}});
    r.text +=
        std::to_string(g.packets.size()) + " packet(s) → " + g.fate + "\n    " + g.text + "\n";
  }
  return r;
}

CmdResult show_trace(Dataplane& dp, const std::vector<std::string>& args) {
  const TraceStore& ts = dp.net.trace;
  if (args.size() == 1 && args[0] == "summary") return show_trace_summary(dp);
  uint32_t only = 0;
  if (args.size() == 2 && args[0] == "packet") {
    if (!parse_count(args[1], &only) || ts.packet(only) == nullptr)
      return CmdResult::error("show trace packet: no traced packet " + args[1] + " (" +
                              std::to_string(ts.used()) + " traced)");
  } else if (!args.empty()) {
    return CmdResult::error("usage: show trace [summary | packet N]");
  }
  CmdResult r;
  r.json = json::array();
  r.text = status_line(dp);
  for (uint32_t k = only ? only : 1; k <= (only ? only : ts.used()); k++) {
    const TracePacket* p = ts.packet(k);
    r.json.push_back(packet_json(dp, k, *p));
    r.text += "\n" + packet_text(dp, k, *p);
  }
  return r;
}

void trace_shutdown(Dataplane& dp) {
  dp.net.trace.clear();  // the workers are stopped: nothing marks any more
  g_filter.reset();      // before the EAL goes (the filter lives in rte_malloc memory)
}

const Feature kFeature{
    .name = "trace",
    .shutdown = trace_shutdown,
};
const FeatureRegistrar kRegistrar{kFeature};

const CommandRegistrar kCommands{
    {{"trace", "add"},
     kAddUsage,
     "trace the next N packets received (on DEV, matching a pcap filter)",
     trace_add},
    {{"trace", "stop"}, "trace stop", "stop marking packets (the traced ones stay)", trace_stop},
    {{"show", "trace"},
     "show trace [summary | packet N]",
     "each traced packet's path through the stages and its fate",
     show_trace},
    {{"clear", "trace"}, "clear trace", "forget every traced packet", clear_trace},
};

}  // namespace
}  // namespace sluice
