// The control plane's plumbing: the queue other threads use to run work on
// the control thread, metrics' address parsing and label escaping, the
// telemetry names of show commands, and docs/cli.md against the registry.
#include <atomic>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "control/command.hh"
#include "control/control_queue.hh"
#include "control/metrics.hh"
#include "control/telemetry.hh"

using namespace sluice;

TEST(ControlQueue, RunsOnTheDrainingThreadAndWaits) {
  ControlQueue q;
  std::atomic<bool> stop{false};
  std::thread::id ran_on;
  std::thread control([&] {
    while (!stop.load()) {
      q.drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  int value = 0;
  EXPECT_TRUE(q.run([&] { ran_on = std::this_thread::get_id(); value = 42; }, 2000));
  EXPECT_EQ(value, 42);  // run() returned after fn finished
  EXPECT_EQ(ran_on, control.get_id());
  stop = true;
  control.join();
}

TEST(ControlQueue, TimesOutWhenNobodyDrainsAndNeverRunsLate) {
  ControlQueue q;
  bool ran = false;
  EXPECT_FALSE(q.run([&] { ran = true; }, 50));
  EXPECT_EQ(q.pending(), 0u);  // withdrawn, not left for a later drain
  EXPECT_EQ(q.drain(), 0u);
  EXPECT_FALSE(ran);
}

TEST(ControlQueue, CloseCancelsQueuedAndRefusesNew) {
  ControlQueue q;
  std::atomic<int> result{-1};
  std::thread t([&] { result = q.run([] {}, 5000) ? 1 : 0; });
  while (q.pending() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  q.close();
  t.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_FALSE(q.run([] {}, 10));
  EXPECT_EQ(q.drain(), 0u);
}

TEST(Metrics, SplitHostPort) {
  std::string h;
  int p = -1;
  EXPECT_TRUE(split_host_port("127.0.0.1:9100", &h, &p));
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(p, 9100);
  EXPECT_TRUE(split_host_port("[::1]:9100", &h, &p));
  EXPECT_EQ(h, "::1");
  EXPECT_TRUE(split_host_port("[::]:0", &h, &p));
  EXPECT_EQ(h, "::");
  EXPECT_EQ(p, 0);
  EXPECT_TRUE(split_host_port("localhost:80", &h, &p));
  for (const char* bad : {"", "9100", ":9100", "1.2.3.4:", "::1:9100", "[::1:9100", "[]:1",
                          "1.2.3.4:65536", "1.2.3.4:9x", "1.2.3.4:99999999999"})
    EXPECT_FALSE(split_host_port(bad, &h, &p)) << bad;
}

TEST(Metrics, LabelEscape) {
  EXPECT_EQ(metrics_label_escape("p1.100"), "p1.100");
  EXPECT_EQ(metrics_label_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(Telemetry, NamesOfShowCommands) {
  EXPECT_EQ(telemetry_name({"show", "devices"}), "/sluice/show/devices");
  EXPECT_EQ(telemetry_name({"show", "port", "stats"}), "/sluice/show/port_stats");
  EXPECT_EQ(telemetry_name({"show", "port", "rx-fixup"}), "/sluice/show/port_rx_fixup");
  EXPECT_EQ(telemetry_name({"show"}), "");
  EXPECT_EQ(telemetry_name({"clear", "stats"}), "");
  // Every registered show command has a distinct telemetry name.
  std::set<std::string> names;
  for (const CommandSpec& s : CommandRegistry::instance().all()) {
    std::string n = telemetry_name(s.words);
    if (s.words[0] == "show") {
      EXPECT_FALSE(n.empty()) << s.usage;
      EXPECT_TRUE(names.insert(n).second) << n;
    }
  }
}

namespace {

// The commands of docs/cli.md's tables: the first cell's `usage`, with the
// table's escaped pipes restored.
std::vector<std::string> documented_usages() {
  std::ifstream f(std::string(SLUICE_SOURCE_DIR) + "/docs/cli.md");
  std::vector<std::string> out;
  std::string line;
  const std::regex row(R"(^\| `((?:[^`\\]|\\.)+)` \|)");
  while (std::getline(f, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    std::string u = m[1];
    std::string plain;
    for (size_t i = 0; i < u.size(); i++) {
      if (u[i] == '\\' && i + 1 < u.size() && u[i + 1] == '|') continue;
      plain += u[i];
    }
    out.push_back(plain);
  }
  return out;
}

}  // namespace

// docs/cli.md cannot drift: every registered command is documented with its
// exact usage line, and every documented command exists.
TEST(CliDoc, MatchesTheRegisteredCommands) {
  std::vector<std::string> doc = documented_usages();
  ASSERT_GT(doc.size(), 10u);
  std::set<std::string> docset(doc.begin(), doc.end());
  std::set<std::string> registered;
  for (const CommandSpec& s : CommandRegistry::instance().all()) {
    registered.insert(s.usage);
    EXPECT_TRUE(docset.count(s.usage)) << "docs/cli.md does not document `" << s.usage << "`";
  }
  for (const std::string& u : doc)
    EXPECT_TRUE(registered.count(u)) << "docs/cli.md documents `" << u
                                     << "`, which no feature registers";
}
