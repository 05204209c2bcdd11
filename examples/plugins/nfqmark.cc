// Example sluice plugin: a hook queue consumer (what a userspace
// nfnetlink_queue program is to Linux), running in its own thread inside
// sluiced. It binds the queue named by `args: "queue=N"` (default 0), reads
// what hooks queue there (e.g. a rule with `verdict: queue, queue: N`),
// marks each packet 0x5e (or `mark=V`), logs the first few, and answers
// accept, so the packet continues after the queueing hook. At shutdown
// (sluice_plugin_fini) it stops and unbinds.
//
//   plugins:
//     - {path: build/examples/plugins/libsluice_nfqmark.so, args: "queue=3 mark=94"}
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "sluice/hook.hh"

namespace {

const sluice_host* g_host = nullptr;
uint16_t g_queue = 0;
uint32_t g_mark = 0x5e;
std::atomic<bool> g_stop{false};
std::atomic<unsigned long long> g_answered{0};
std::thread g_thread;

// "queue=3 mark=94": each key=value, blank-separated.
void parse(const char* args) {
  if (args == nullptr) return;
  const char* q = std::strstr(args, "queue=");
  if (q != nullptr) g_queue = static_cast<uint16_t>(std::strtoul(q + 6, nullptr, 0));
  const char* m = std::strstr(args, "mark=");
  if (m != nullptr) g_mark = static_cast<uint32_t>(std::strtoul(m + 5, nullptr, 0));
}

void consume() {
  sluice_queued got[32];
  while (!g_stop.load()) {
    unsigned n = g_host->queue_read(g_host->ctx, g_queue, got, 32);
    if (n == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    for (unsigned i = 0; i < n; i++) {
      g_host->set_mark(got[i].pkt, g_mark);
      if (g_answered.load() < 3) {
        char line[128];
        std::snprintf(line, sizeof line,
                      "nfqmark: queue %u packet %u len %u in=%s: mark %#x, accept", got[i].queue,
                      got[i].id, g_host->len(got[i].pkt),
                      got[i].in != 0xffff ? g_host->dev_name(got[i].in) : "-", g_mark);
        g_host->log(2, line);
      }
      g_host->queue_verdict(g_host->ctx, &got[i], SLUICE_ACCEPT);
      g_answered++;
    }
  }
  // Answer what arrived meanwhile, then leave the queue.
  unsigned n;
  while ((n = g_host->queue_read(g_host->ctx, g_queue, got, 32)) != 0)
    for (unsigned i = 0; i < n; i++) g_host->queue_verdict(g_host->ctx, &got[i], SLUICE_ACCEPT);
  g_host->queue_unbind(g_host->ctx, g_queue);
}

}  // namespace

extern "C" {

// How many packets the consumer answered (tests read it with dlsym).
unsigned long long nfqmark_answered() {
  return g_answered.load();
}

int sluice_plugin_init(const sluice_host* host, const sluice_plugin_args* args) {
  if (host->abi_version < 2) return -1;  // the queue consumer functions came with ABI 2
  g_host = host;
  parse(args->args);
  if (host->queue_bind(host->ctx, g_queue) != 0) return -2;  // bad or taken
  g_stop = false;
  g_thread = std::thread(consume);
  return 0;
}

void sluice_plugin_fini(void) {
  g_stop = true;
  if (g_thread.joinable()) g_thread.join();
}

}  // extern "C"
