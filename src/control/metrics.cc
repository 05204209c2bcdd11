#include "control/metrics.hh"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

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
  for (auto& fn : dp.metrics_fns) fn(out);  // the features' own families
  auto rt = dp.runtime();
  counter(out, "sluice_stage_packets_total", "Packets through each datapath stage.");
  for (size_t i = 0; i < rt.size(); i++)
    out += std::string("sluice_stage_packets_total{stage=\"") + stage_name(static_cast<Stage>(i)) +
           "\"} " + std::to_string(rt[i].packets) + "\n";
  counter(out, "sluice_stage_cycles_total", "TSC cycles spent in each datapath stage.");
  for (size_t i = 0; i < rt.size(); i++)
    out += std::string("sluice_stage_cycles_total{stage=\"") + stage_name(static_cast<Stage>(i)) +
           "\"} " + std::to_string(rt[i].cycles) + "\n";
  return out;
}

MetricsServer::MetricsServer(Dataplane& dp, const std::string& host_port) : dp_(dp) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics: expected HOST:PORT");
  std::string host = host_port.substr(0, colon);
  int port = std::stoi(host_port.substr(colon + 1));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1)
    throw std::runtime_error("metrics: '" + host + "' is not an IPv4 address");
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd_, 16) != 0) {
    std::string err = strerror(errno);
    close(fd_);
    throw std::runtime_error("metrics: cannot listen on " + host_port + ": " + err);
  }
  socklen_t len = sizeof sa;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
}

MetricsServer::~MetricsServer() {
  if (fd_ >= 0) close(fd_);
}

void MetricsServer::poll() {
  for (int i = 0; i < 8; i++) {
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    timeval tv{0, 200 * 1000};  // a scraper sends its request at once
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char buf[2048];
    ssize_t n = recv(c, buf, sizeof buf - 1, 0);
    std::string resp;
    if (n > 0 && std::strncmp(buf, "GET /metrics", 12) == 0) {
      std::string body = metrics_text(dp_);
      resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    } else {
      resp = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    }
    size_t off = 0;
    while (off < resp.size()) {
      ssize_t w = send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    close(c);
  }
}

}  // namespace sluice
