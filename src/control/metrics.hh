// Prometheus text exposition of sluiced's counters over HTTP
// (`control.metrics: "HOST:PORT"`, IPv4 or "[IPv6]:PORT", "" = off), served
// by cpp-httplib on its own thread. The text is rendered on the control
// thread (which owns the tables) through a ControlQueue: the HTTP thread
// queues the rendering and waits for it, so a scrape never races a table
// update and never blocks a worker.
//
// Metrics: sluice_rx_packets_total, sluice_rx_bytes_total,
// sluice_rx_dropped_total, sluice_rx_nohandler_total,
// sluice_rx_otherhost_dropped_total, sluice_multicast_total,
// sluice_tx_packets_total, sluice_tx_bytes_total, sluice_tx_dropped_total
// {dev}; sluice_drops_total{dev,reason}; sluice_link_up{dev};
// sluice_stage_{packets,cycles}_total{stage}; plus every feature's own
// families (Dataplane::add_metrics: bridge/FDB, neighbours, hooks, bonds,
// LACP, captures, mirrors).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace sluice {

class ControlQueue;
class Dataplane;

// The exposition text (also used by tests).
std::string metrics_text(Dataplane& dp);

class MetricsServer {
 public:
  // Binds HOST:PORT (port 0: any free port) and starts serving; throws
  // std::runtime_error when the address cannot be bound.
  MetricsServer(Dataplane& dp, const std::string& host_port, ControlQueue& queue);
  ~MetricsServer();  // stops the HTTP thread
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  int port() const { return port_; }

  // How long a scrape waits for the control thread before answering 503.
  static constexpr int kRenderTimeoutMs = 5000;

 private:
  Dataplane& dp_;
  ControlQueue& queue_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::atomic<bool> exited_{false};
  int port_ = 0;
};

// The families read from the features' `show` JSON (metrics_features.cc).
void feature_metrics(Dataplane& dp, std::string& out);
// A Prometheus label value with \\, \" and \n escaped.
std::string metrics_label_escape(const std::string& v);

// "HOST:PORT" / "[V6]:PORT" → host (without brackets) and port; false when malformed.
bool split_host_port(const std::string& host_port, std::string* host, int* port);

}  // namespace sluice
