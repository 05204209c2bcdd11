// Prometheus text exposition of sluiced's counters over HTTP
// (`control.metrics: "HOST:PORT"`, "" = off). Served from the control
// thread: poll() accepts and answers pending requests without blocking for
// longer than a short per-request read timeout.
//
// Metrics: sluice_rx_packets_total, sluice_rx_bytes_total,
// sluice_rx_dropped_total, sluice_rx_nohandler_total,
// sluice_rx_otherhost_dropped_total, sluice_multicast_total,
// sluice_tx_packets_total, sluice_tx_bytes_total, sluice_tx_dropped_total
// {dev}; sluice_drops_total{dev,reason}; sluice_link_up{dev};
// sluice_stage_{packets,cycles}_total{stage}.
#pragma once

#include <string>

namespace sluice {

class Dataplane;

// The exposition text (also used by tests).
std::string metrics_text(Dataplane& dp);

class MetricsServer {
 public:
  // Binds HOST:PORT; throws std::runtime_error.
  MetricsServer(Dataplane& dp, const std::string& host_port);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  void poll();
  int port() const { return port_; }

 private:
  Dataplane& dp_;
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace sluice
