// The control-socket queue consumer (what a userspace nfnetlink_queue
// program is to Linux): a client binds a queue, reads the packets waiting on
// it (with their bytes, hex) and answers each with a verdict. Packets read
// and not answered yet are held here, on the control thread, at most
// kMaxHeld per queue; unbinding drops what is held and waiting, as closing
// an NFQUEUE socket does. Also `show queues`.
#include <algorithm>
#include <map>

#include <rte_mbuf.h>

#include "control/command.hh"
#include "core/dataplane.hh"
#include "hooks/hooks.hh"

namespace sluice::hooks {

namespace {

constexpr unsigned kMaxHeld = 4096;

struct QueueConsole {
  explicit QueueConsole(Dataplane&) {}
  bool cli_bound[kNumQueues] = {};
  std::map<uint32_t, Queued> held[kNumQueues];
};

bool parse_queue(const std::string& s, uint16_t* q) {
  if (s.empty() || s.size() > 2 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  unsigned v = static_cast<unsigned>(std::stoul(s));
  if (v >= kNumQueues) return false;
  *q = static_cast<uint16_t>(v);
  return true;
}

std::string dev_name(Dataplane& dp, uint16_t d) {
  const Device* dev = dp.net.dev(d);
  return dev != nullptr ? dev->name : "";
}

// Drops everything of q that is waiting or held (unbind, shutdown).
unsigned flush(Registry& reg, QueueConsole& qc, uint16_t q) {
  unsigned n = 0;
  for (auto& [id, qp] : qc.held[q]) {
    reg.verdict(qp, SLUICE_DROP);
    n++;
  }
  qc.held[q].clear();
  Queued buf[64];
  while (unsigned got = reg.read(q, buf, 64)) {
    for (unsigned i = 0; i < got; i++) reg.verdict(buf[i], SLUICE_DROP);
    n += got;
  }
  return n;
}

const char* usage_q = "usage: queue bind|unbind Q (0..15)";

}  // namespace

void queue_console_shutdown(Dataplane& dp) {
  QueueConsole* qc = dp.find_feature<QueueConsole>();
  if (qc == nullptr) return;
  Registry& reg = registry(dp);
  for (uint16_t q = 0; q < kNumQueues; q++)
    if (qc->cli_bound[q]) {
      reg.bind(q, false);
      qc->cli_bound[q] = false;
      flush(reg, *qc, q);
    }
}

namespace {

CmdResult queue_bind(Dataplane& dp, const std::vector<std::string>& args) {
  uint16_t q;
  if (args.size() != 1 || !parse_queue(args[0], &q)) return CmdResult::error(usage_q);
  Registry& reg = registry(dp);
  QueueConsole& qc = dp.feature<QueueConsole>();
  if (qc.cli_bound[q]) return CmdResult::error("queue " + args[0] + " is already bound here");
  if (!reg.bind(q, true))
    return CmdResult::error("queue " + args[0] + " has another consumer (a plugin)");
  qc.cli_bound[q] = true;
  CmdResult r;
  r.text = "queue " + args[0] + " bound\n";
  r.json = {{"queue", q}, {"bound", true}};
  return r;
}

CmdResult queue_unbind(Dataplane& dp, const std::vector<std::string>& args) {
  uint16_t q;
  if (args.size() != 1 || !parse_queue(args[0], &q)) return CmdResult::error(usage_q);
  Registry& reg = registry(dp);
  QueueConsole& qc = dp.feature<QueueConsole>();
  if (!qc.cli_bound[q]) return CmdResult::error("queue " + args[0] + " is not bound here");
  reg.bind(q, false);
  qc.cli_bound[q] = false;
  unsigned n = flush(reg, qc, q);
  CmdResult r;
  r.text = "queue " + args[0] + " unbound, " + std::to_string(n) + " packet(s) dropped\n";
  r.json = {{"queue", q}, {"bound", false}, {"dropped", n}};
  return r;
}

CmdResult queue_read(Dataplane& dp, const std::vector<std::string>& args) {
  uint16_t q;
  unsigned max = 16;
  if (args.empty() || args.size() > 2 || !parse_queue(args[0], &q) ||
      (args.size() == 2 && (args[1].empty() || args[1].size() > 4 ||
                            args[1].find_first_not_of("0123456789") != std::string::npos ||
                            (max = static_cast<unsigned>(std::stoul(args[1]))) == 0)))
    return CmdResult::error("usage: queue read Q [MAX]  (Q 0..15, MAX 1..9999, default 16)");
  Registry& reg = registry(dp);
  QueueConsole& qc = dp.feature<QueueConsole>();
  if (!qc.cli_bound[q]) return CmdResult::error("queue " + args[0] + " is not bound here");
  unsigned room = kMaxHeld - static_cast<unsigned>(qc.held[q].size());
  max = std::min(max, room);
  CmdResult r;
  r.json = nlohmann::json::array();
  Queued buf[64];
  static const char* hex = "0123456789abcdef";
  while (max != 0) {
    unsigned got = reg.read(q, buf, std::min(max, 64u));
    if (got == 0) break;
    max -= got;
    for (unsigned i = 0; i < got; i++) {
      const Queued& qp = buf[i];
      qc.held[q][qp.id] = qp;
      std::string data;
      const rte_mbuf* m = qp.m;
      data.reserve(2 * m->pkt_len);
      for (const rte_mbuf* s = m; s != nullptr; s = s->next) {
        const auto* p = rte_pktmbuf_mtod(s, const uint8_t*);
        for (uint16_t k = 0; k < s->data_len; k++) {
          data += hex[p[k] >> 4];
          data += hex[p[k] & 15];
        }
      }
      const PktMeta& md = meta(m);
      r.json.push_back({{"id", qp.id},
                        {"queue", q},
                        {"point", point_name(qp.point)},
                        {"in", dev_name(dp, qp.in)},
                        {"out", dev_name(dp, qp.out)},
                        {"len", m->pkt_len},
                        {"mark", md.mark},
                        {"data", data}});
      r.text += "id " + std::to_string(qp.id) + "  " + point_name(qp.point) + "  in " +
                dev_name(dp, qp.in) + "  out " + dev_name(dp, qp.out) + "  len " +
                std::to_string(m->pkt_len) + "\n";
    }
  }
  if (r.text.empty()) r.text = "nothing waiting\n";
  return r;
}

CmdResult queue_verdict(Dataplane& dp, const std::vector<std::string>& args) {
  static const char* usage = "usage: queue verdict Q ID|all accept|drop|stop|repeat [mark VALUE]";
  uint16_t q;
  if ((args.size() != 3 && args.size() != 5) || !parse_queue(args[0], &q))
    return CmdResult::error(usage);
  uint32_t v;
  if (args[2] == "accept")
    v = SLUICE_ACCEPT;
  else if (args[2] == "drop")
    v = SLUICE_DROP;
  else if (args[2] == "stop")
    v = SLUICE_STOP;
  else if (args[2] == "repeat")
    v = SLUICE_REPEAT;
  else
    return CmdResult::error(usage);
  bool set_mark = false;
  uint32_t mark = 0;
  if (args.size() == 5) {
    if (args[3] != "mark") return CmdResult::error(usage);
    try {
      size_t used = 0;
      unsigned long long x = std::stoull(args[4], &used, 0);
      if (used != args[4].size() || x > 0xffffffffull) throw std::out_of_range("mark");
      mark = static_cast<uint32_t>(x);
      set_mark = true;
    } catch (const std::exception&) {
      return CmdResult::error("mark must be a 32-bit number, got '" + args[4] + "'");
    }
  }
  Registry& reg = registry(dp);
  QueueConsole& qc = dp.feature<QueueConsole>();
  if (!qc.cli_bound[q]) return CmdResult::error("queue " + args[0] + " is not bound here");
  auto& held = qc.held[q];
  std::vector<uint32_t> ids;
  if (args[1] == "all") {
    for (auto& [id, qp] : held) ids.push_back(id);
  } else {
    uint32_t id = 0;
    try {
      size_t used = 0;
      unsigned long long x = std::stoull(args[1], &used, 10);
      if (used != args[1].size() || x > 0xffffffffull) throw std::out_of_range("id");
      id = static_cast<uint32_t>(x);
    } catch (const std::exception&) {
      return CmdResult::error(usage);
    }
    if (held.find(id) == held.end())
      return CmdResult::error("queue " + args[0] + ": no packet " + args[1] +
                              " read and unanswered");
    ids.push_back(id);
  }
  for (uint32_t id : ids) {
    Queued qp = held[id];
    held.erase(id);
    if (set_mark) meta(qp.m).mark = mark;
    reg.verdict(qp, v);
  }
  CmdResult r;
  r.text = std::to_string(ids.size()) + " verdict(s) " + args[2] + "\n";
  r.json = {{"queue", q}, {"answered", ids.size()}, {"verdict", args[2]}};
  return r;
}

CmdResult show_queues(Dataplane& dp, const std::vector<std::string>& args) {
  if (!args.empty()) return CmdResult::error("usage: show queues");
  Registry& reg = registry(dp);
  QueueConsole& qc = dp.feature<QueueConsole>();
  CmdResult r;
  r.json = nlohmann::json::array();
  r.text =
      "queue  bound  consumer  len  waiting  held  queued  answered  full  nolistener  "
      "bypassed\n";
  for (uint16_t q = 0; q < kNumQueues; q++) {
    auto s = reg.queue_stats(q);
    bool b = reg.bound(q);
    if (!b && s.queued == 0 && s.nolistener == 0 && s.full == 0) continue;
    const char* who = qc.cli_bound[q] ? "socket" : (b ? "plugin" : "-");
    r.json.push_back({{"queue", q},
                      {"bound", b},
                      {"consumer", who},
                      {"len", reg.queue_len(q)},
                      {"waiting", reg.waiting(q)},
                      {"held", qc.held[q].size()},
                      {"queued", s.queued},
                      {"answered", s.answered},
                      {"full", s.full},
                      {"nolistener", s.nolistener},
                      {"bypassed", s.bypassed},
                      {"reinject_full", s.reinject_full}});
    char line[160];
    std::snprintf(line, sizeof line,
                  "%5u  %5s  %8s  %4u  %7u  %4zu  %6lu  %8lu  %4lu  %10lu  %8lu\n", q,
                  b ? "yes" : "no", who, reg.queue_len(q), reg.waiting(q), qc.held[q].size(),
                  static_cast<unsigned long>(s.queued), static_cast<unsigned long>(s.answered),
                  static_cast<unsigned long>(s.full), static_cast<unsigned long>(s.nolistener),
                  static_cast<unsigned long>(s.bypassed));
    r.text += line;
  }
  return r;
}

CommandRegistrar r1({{"queue", "bind"},
                     "queue bind Q",
                     "consume hook queue Q (0..15) from this socket (one consumer per queue)",
                     queue_bind});
CommandRegistrar r2({{"queue", "unbind"},
                     "queue unbind Q",
                     "stop consuming queue Q; what is waiting or held is dropped",
                     queue_unbind});
CommandRegistrar r3({{"queue", "read"},
                     "queue read Q [MAX]",
                     "packets waiting on queue Q (id, point, devices, bytes in hex); they are "
                     "held until answered",
                     queue_read});
CommandRegistrar r4({{"queue", "verdict"},
                     "queue verdict Q ID|all accept|drop|stop|repeat [mark VALUE]",
                     "answer held packets of queue Q (accept: the rest of the hooks, then on)",
                     queue_verdict});
CommandRegistrar r5({{"show", "queues"},
                     "show queues",
                     "hook queues: consumer, waiting, held, queued, answered, full, no listener",
                     show_queues});

}  // namespace

}  // namespace sluice::hooks
