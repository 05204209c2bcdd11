#include "control/metrics.hh"

#include <pthread.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <httplib.h>

#include "control/control_queue.hh"
#include "core/dataplane.hh"

namespace sluice {

namespace {

void counter(std::string& out, const char* name, const char* help) {
  out += "# HELP ";
  out += name;
  out += " ";
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += " counter\n";
}

}  // namespace

std::string metrics_text(Dataplane& dp) {
  std::string out;
  auto devs = dp.net.devices();
  struct Field {
    const char* name;
    const char* help;
    uint64_t DevCounters::*member;
  };
  static const Field fields[] = {
      {"sluice_rx_packets_total", "Packets received (Linux rx_packets).", &DevCounters::rx_packets},
      {"sluice_rx_bytes_total", "Bytes received (Linux rx_bytes).", &DevCounters::rx_bytes},
      {"sluice_rx_dropped_total", "Unhandled frames dropped (Linux rx_dropped).",
       &DevCounters::rx_dropped},
      {"sluice_rx_nohandler_total", "Unhandled frames after EXACT (Linux rx_nohandler).",
       &DevCounters::rx_nohandler},
      {"sluice_rx_otherhost_dropped_total",
       "OTHERHOST frames dropped by IP (Linux rx_otherhost_dropped).",
       &DevCounters::rx_otherhost_dropped},
      {"sluice_multicast_total", "Multicast frames received (Linux multicast).",
       &DevCounters::multicast},
      {"sluice_tx_packets_total", "Packets sent (Linux tx_packets).", &DevCounters::tx_packets},
      {"sluice_tx_bytes_total", "Bytes sent (Linux tx_bytes).", &DevCounters::tx_bytes},
      {"sluice_tx_dropped_total", "Packets dropped on transmit (Linux tx_dropped).",
       &DevCounters::tx_dropped},
  };
  std::vector<DevCounters> c;
  for (auto* d : devs) c.push_back(dp.counters(d->index));
  for (const Field& f : fields) {
    counter(out, f.name, f.help);
    for (size_t i = 0; i < devs.size(); i++)
      out += std::string(f.name) + "{dev=\"" + devs[i]->name + "\"} " +
             std::to_string(c[i].*f.member) + "\n";
  }
  counter(out, "sluice_drops_total", "Packets dropped, by device and reason.");
  for (auto* d : devs) {
    auto dr = dp.drops(d->index);
    for (unsigned r = 0; r < kNumDropReasons; r++)
      if (dr[r] != 0)
        out += "sluice_drops_total{dev=\"" + d->name + "\",reason=\"" +
               drop_reason_name(static_cast<DropReason>(r)) + "\"} " + std::to_string(dr[r]) + "\n";
  }
  out +=
      "# HELP sluice_link_up Operational state of the device (1 up).\n# TYPE sluice_link_up "
      "gauge\n";
  for (auto* d : devs)
    out += "sluice_link_up{dev=\"" + d->name + "\"} " + (d->up() ? "1\n" : "0\n");
  feature_metrics(dp, out);                 // bridge, L3, hooks, captures, mirrors
  for (auto& fn : dp.metrics_fns) fn(out);  // families the features register (bonds, LACP)
  auto rt = dp.runtime();
  counter(out, "sluice_stage_packets_total", "Packets through each datapath stage.");
  const unsigned nst = stage_count();
  for (unsigned i = 1; i < nst; i++)
    out += std::string("sluice_stage_packets_total{stage=\"") +
           stage_name(static_cast<StageId>(i)) + "\"} " + std::to_string(rt[i].packets) + "\n";
  counter(out, "sluice_stage_cycles_total", "TSC cycles spent in each datapath stage.");
  for (unsigned i = 1; i < nst; i++)
    out += std::string("sluice_stage_cycles_total{stage=\"") + stage_name(static_cast<StageId>(i)) +
           "\"} " + std::to_string(rt[i].cycles) + "\n";
  return out;
}

bool split_host_port(const std::string& host_port, std::string* host, int* port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= host_port.size()) return false;
  std::string h = host_port.substr(0, colon);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return false;  // a bare IPv6 address needs brackets
  }
  int p = 0;
  for (char c : host_port.substr(colon + 1)) {
    if (c < '0' || c > '9' || p > 65535) return false;
    p = p * 10 + (c - '0');
  }
  if (p > 65535) return false;
  *host = std::move(h);
  *port = p;
  return true;
}

MetricsServer::MetricsServer(Dataplane& dp, const std::string& host_port, ControlQueue& queue)
    : dp_(dp), queue_(queue), http_(std::make_unique<httplib::Server>()) {
  std::string host;
  int port = 0;
  if (!split_host_port(host_port, &host, &port))
    throw std::runtime_error("metrics: expected HOST:PORT or [IPV6]:PORT, got '" + host_port + "'");
  // Two threads are plenty for a scraper or two; they inherit the control
  // thread's CPU set, never a worker's.
  http_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  http_->set_read_timeout(5, 0);
  http_->set_write_timeout(5, 0);
  http_->set_keep_alive_max_count(16);
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::string body;
    const bool ok = queue_.run(
        [&] {
          try {
            body = metrics_text(dp_);
          } catch (const std::exception& e) {
            body.clear();
          }
        },
        kRenderTimeoutMs);
    if (!ok || body.empty()) {
      res.status = 503;
      res.set_content("sluiced: the control thread did not answer\n", "text/plain");
      return;
    }
    res.set_content(body, "text/plain; version=0.0.4; charset=utf-8");
  });
  http_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("sluiced metrics: see /metrics\n", "text/plain");
  });
  const bool bound = port == 0 ? (port = http_->bind_to_any_port(host.c_str())) > 0
                               : http_->bind_to_port(host.c_str(), port);
  if (!bound)
    throw std::runtime_error("metrics: cannot listen on " + host_port + ": " +
                             std::strerror(errno));
  port_ = port;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sluice-metrics");
    http_->listen_after_bind();
    exited_.store(true);
  });
}

MetricsServer::~MetricsServer() {
  // stop() only works on a server that is listening: wait for the thread
  // to get there (or to have failed) first.
  for (int i = 0; i < 2000 && !http_->is_running() && !exited_.load(); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sluice
