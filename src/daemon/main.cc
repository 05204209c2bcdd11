// sluiced: loads the topology, starts EAL, ports and workers, serves the
// control socket on the main lcore until SIGINT/SIGTERM, then stops cleanly
// (workers stop and flush, captures close, ports close, every mbuf back).
//
//   sluiced -c CONFIG [--check] [--foreground] [--log-level L]
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_pdump.h>
#include <rte_telemetry.h>
#include <systemd/sd-daemon.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "config/topology.hh"
#include "control/control_queue.hh"
#include "control/metrics.hh"
#include "control/command.hh"
#include "control/reload.hh"
#include "control/server.hh"
#include "control/telemetry.hh"
#include "core/dataplane.hh"
#include "pmd_glue/pmd.hh"
#include "sluice/version.hh"

namespace {

std::atomic<bool> g_quit{false};
std::atomic<bool> g_reload{false};  // SIGHUP: re-read the start file
// Work of the metrics and telemetry threads, run by the control loop; static
// storage, so a telemetry callback still in flight at exit finds it closed.
sluice::ControlQueue g_control_jobs;
int g_ready_fd = -1;

void on_signal(int) {
  g_quit.store(true);
}
void on_hangup(int) {
  g_reload.store(true);
}

// SIGHUP does what `sluicectl reload` does, with the start file; systemd's
// reload protocol (RELOADING=1, then READY=1) brackets it.
void reload_on_hangup(sluice::Dataplane& dp) {
  sd_notify(0, "RELOADING=1");
  spdlog::info("SIGHUP: reloading {}", dp.topo.file);
  sluice::ReloadResult r = sluice::reload_topology(dp, "");
  if (!r.ok) spdlog::error("reload failed: {}", r.error);
  sd_notifyf(0, "READY=1\nSTATUS=%s", r.ok ? "reloaded" : "reload failed; running the previous topology");
}

uint64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

void setup_logging(const sluice::config::Logging& cfg, const std::string& override_level) {
  std::shared_ptr<spdlog::logger> lg;
  if (cfg.file.empty())
    lg = spdlog::stderr_color_mt("sluiced");
  else
    lg = spdlog::basic_logger_mt("sluiced", cfg.file);
  spdlog::set_default_logger(lg);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(override_level.empty() ? cfg.level : override_level));
  spdlog::flush_on(spdlog::level::info);
}

// Without --foreground: fork; the parent exits 0 once the child is serving
// (or 1 if it failed), so `sluiced -c x && sluicectl …` works in scripts.
void daemonize() {
  int fds[2];
  if (pipe(fds) != 0) return;
  pid_t pid = fork();
  if (pid < 0) return;
  if (pid > 0) {
    close(fds[1]);
    char c = 0;
    ssize_t n = read(fds[0], &c, 1);
    _exit(n == 1 && c == 'R' ? 0 : 1);
  }
  close(fds[0]);
  setsid();
  g_ready_fd = fds[1];
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
  }
}

// Readiness, once the control socket serves: the parent of a forked daemon
// (daemonize), and systemd's Type=notify (sd_notify: a no-op without
// $NOTIFY_SOCKET).
void notify_ready(const std::string& status) {
  sd_notifyf(0, "READY=1\nMAINPID=%d\nSTATUS=%s", static_cast<int>(getpid()), status.c_str());
  if (g_ready_fd >= 0) {
    if (write(g_ready_fd, "R", 1) != 1) { /* parent gone */
    }
    close(g_ready_fd);
    g_ready_fd = -1;
  }
}

sluice::Dataplane* g_dp = nullptr;

int telemetry_devices(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  if (g_dp == nullptr) return 0;
  for (auto* dev : g_dp->net.devices()) {
    auto c = g_dp->counters(dev->index);
    rte_tel_data* x = rte_tel_data_alloc();
    rte_tel_data_start_dict(x);
    rte_tel_data_add_dict_u64(x, "rx_packets", c.rx_packets);
    rte_tel_data_add_dict_u64(x, "rx_bytes", c.rx_bytes);
    rte_tel_data_add_dict_u64(x, "rx_dropped", c.rx_dropped);
    rte_tel_data_add_dict_u64(x, "rx_nohandler", c.rx_nohandler);
    rte_tel_data_add_dict_u64(x, "tx_packets", c.tx_packets);
    rte_tel_data_add_dict_u64(x, "tx_bytes", c.tx_bytes);
    rte_tel_data_add_dict_u64(x, "tx_dropped", c.tx_dropped);
    rte_tel_data_add_dict_container(d, dev->name.c_str(), x, 0);
  }
  return 0;
}

void log_final_stats(sluice::Dataplane& dp) {
  for (auto* dev : dp.net.devices()) {
    auto c = dp.counters(dev->index);
    spdlog::info(
        "final {}: rx_packets {} rx_bytes {} rx_dropped {} rx_nohandler {} tx_packets {} tx_bytes "
        "{} tx_dropped {}",
        dev->name, c.rx_packets, c.rx_bytes, c.rx_dropped, c.rx_nohandler, c.tx_packets, c.tx_bytes,
        c.tx_dropped);
    auto dr = dp.drops(dev->index);
    for (unsigned r = 0; r < sluice::kNumDropReasons; r++)
      if (dr[r] != 0)
        spdlog::info("final {}: drop {} {}", dev->name,
                     sluice::drop_reason_name(static_cast<sluice::DropReason>(r)), dr[r]);
  }
}

int run(const sluice::config::Topology& topo, const std::string& prog) {
  sluice::pmd::init_eal(topo, prog);
  int missing = 0;
  {
    sluice::Dataplane dp;
    dp.topo = topo;
    g_dp = &dp;
    sluice::pmd::setup(dp);       // workers, pools, ports
    dp.build();                   // VLAN sub-devices, then every feature (src/core/feature.hh)
    sluice::pmd::poll_links(dp);  // ports that features added (punt TAPs)
    // dpdk-dumpcap attaches as a secondary process (hugepages only): serve its requests.
    if (topo.eal.hugepages && rte_pdump_init() != 0)
      spdlog::warn("rte_pdump_init: {} (dpdk-dumpcap cannot attach)", rte_strerror(rte_errno));
    rte_telemetry_register_cmd("/sluice/devices", telemetry_devices,
                               "Per-device counters of sluiced. Takes no parameters");
    sluice::ControlServer server(dp, topo.control.socket, sluice::CommandRegistry::instance(),
                                 topo.control.gid);
    if (topo.control.telemetry)
      sluice::register_telemetry_commands(dp, sluice::CommandRegistry::instance(), g_control_jobs);
    std::unique_ptr<sluice::MetricsServer> metrics;
    if (!topo.control.metrics.empty()) {
      metrics = std::make_unique<sluice::MetricsServer>(dp, topo.control.metrics, g_control_jobs);
      spdlog::info("metrics: http://{}/metrics", topo.control.metrics);
    }
    dp.add_timer(100, [&dp](uint64_t) { sluice::pmd::poll_links(dp); });
    dp.start_workers();
    const std::string status =
        fmt::format("{} port(s), {} device(s), {} worker(s); control socket {}", dp.ports.size(),
                    dp.net.device_count(), dp.workers.size(), topo.control.socket);
    spdlog::info("sluiced {} running: {}", SLUICE_VERSION, status);
    notify_ready(status);
    while (!g_quit.load()) {
      server.poll(20);
      g_control_jobs.drain();
      if (dp.link_event.load()) sluice::pmd::poll_links(dp);
      if (g_reload.exchange(false)) reload_on_hangup(dp);
      dp.run_timers(now_ms());
    }
    spdlog::info("stopping");
    sd_notify(0, "STOPPING=1");
    sluice::unregister_telemetry_dataplane();
    g_control_jobs.close();
    metrics.reset();
    dp.stop_workers();
    dp.run_shutdown();
    log_final_stats(dp);
    missing = static_cast<int>(sluice::pmd::close_ports(dp));
    g_dp = nullptr;
  }
  if (topo.eal.hugepages) rte_pdump_uninit();
  rte_eal_cleanup();
  spdlog::info("stopped{}", missing ? " (mbufs missing)" : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluiced — Linux's receive path on DPDK ports"};
  std::string config_path, log_level;
  bool check = false, foreground = false;
  app.add_option("-c,--config", config_path, "topology file (YAML)")->required();
  app.add_flag("--check", check, "validate the topology and exit (0 ok, 2 bad)");
  app.add_flag("--foreground", foreground, "do not fork into the background");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off");
  app.set_version_flag("--version", SLUICE_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  sluice::config::Topology topo;
  try {
    topo = sluice::config::load_file(config_path);
  } catch (const sluice::config::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  if (check) {
    std::cout << config_path << ": ok (" << topo.ports.size() << " port(s), " << topo.vlans.size()
              << " vlan(s))\n";
    return 0;
  }

  if (!foreground) {
    if (topo.logging.file.empty()) topo.logging.file = "/var/log/sluiced.log";
    std::cout << "sluiced: starting in the background, logging to " << topo.logging.file
              << std::endl;
    daemonize();
  }
  setup_logging(topo.logging, log_level);
  if (!topo.logging.file.empty()) {
    if (FILE* f = fopen(topo.logging.file.c_str(), "a")) {
      setvbuf(f, nullptr, _IOLBF, 0);
      rte_openlog_stream(f);  // EAL and PMD messages go to the same file
    }
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_hangup;
  sigaction(SIGHUP, &hup, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    return run(topo, argv[0]);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
