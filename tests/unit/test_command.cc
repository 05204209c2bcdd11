// The command registry (matching, help, errors), the control socket protocol
// (ControlServer over a real unix socket, a client on a std::thread), the
// core commands' JSON shapes (docs/CLI.md) and the format helpers.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <rte_version.h>
#include <sluice/version.hh>

#include "control/command.hh"
#include "control/server.hh"
#include "core/dataplane.hh"
#include "core/format.hh"

using namespace sluice;
using nlohmann::json;

namespace {

// ---- registry ----------------------------------------------------------------------------------

CmdHandler reply_with(std::string text, std::vector<std::string>* seen_args = nullptr) {
  return [text, seen_args](Dataplane&, const std::vector<std::string>& args) {
    if (seen_args != nullptr) *seen_args = args;
    CmdResult r;
    r.text = text;
    r.json = {{"ran", text}};
    return r;
  };
}

class Registry : public ::testing::Test {
 protected:
  Dataplane dp;
  CommandRegistry reg;  // a private table: the global one holds the features' commands
  std::vector<std::string> args;

  void SetUp() override {
    reg.add({{"show", "port"}, "show port DEV", "one port", reply_with("show port", &args)});
    reg.add({{"show", "port", "stats"},
             "show port stats [DEV]",
             "counters",
             reply_with("show port stats", &args)});
    reg.add({{"show", "ports"}, "show ports", "all ports", reply_with("show ports", &args)});
    reg.add({{"clear", "stats"}, "clear stats", "zero counters", reply_with("clear stats", &args)});
  }
};

TEST_F(Registry, MatchesTheLongestPrefix) {
  size_t consumed = 99;
  const CommandSpec* s = reg.match({"show", "port", "stats", "eth0"}, &consumed);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->usage, "show port stats [DEV]");
  EXPECT_EQ(consumed, 3u);

  s = reg.match({"show", "port", "eth0"}, &consumed);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->usage, "show port DEV");
  EXPECT_EQ(consumed, 2u);

  s = reg.match({"show", "ports"}, &consumed);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->usage, "show ports");
  EXPECT_EQ(consumed, 2u);
}

TEST_F(Registry, WordsCompareExactly) {
  size_t consumed = 99;
  EXPECT_EQ(reg.match({"show"}, &consumed), nullptr);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(reg.match({"show", "por"}, &consumed), nullptr);  // no abbreviations
  EXPECT_EQ(reg.match({"show", "portx"}, &consumed), nullptr);
  EXPECT_EQ(reg.match({"Show", "ports"}, &consumed), nullptr);  // case matters
  EXPECT_EQ(reg.match({}, &consumed), nullptr);
  EXPECT_NE(reg.match({"show", "port"}, nullptr), nullptr);  // consumed is optional
}

TEST_F(Registry, RunPassesTheWordsAfterTheCommand) {
  CmdResult r = reg.run(dp, {"show", "port", "stats", "eth0", "extra"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.text, "show port stats");
  EXPECT_EQ(args, (std::vector<std::string>{"eth0", "extra"}));
  r = reg.run(dp, {"show", "ports"});
  EXPECT_EQ(r.text, "show ports");
  EXPECT_TRUE(args.empty());
}

TEST_F(Registry, UnknownCommand) {
  CmdResult r = reg.run(dp, {"frobnicate", "eth0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.text, "unknown command 'frobnicate eth0'; try 'help'");
  EXPECT_TRUE(r.json.is_null());
  r = reg.run(dp, {"show"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.text, "unknown command 'show'; try 'help'");
  r = reg.run(dp, {});
  EXPECT_EQ(r.status, 1);
}

TEST_F(Registry, HelpListsEveryCommandSorted) {
  CmdResult r = reg.run(dp, {"help"});
  ASSERT_EQ(r.status, 0);
  const std::vector<std::string> order = {"clear stats", "help [COMMAND...]", "show port DEV",
                                          "show port stats [DEV]", "show ports"};
  size_t at = 0;
  for (auto& u : order) {
    size_t p = r.text.find(u, at);
    ASSERT_NE(p, std::string::npos) << u << " missing or out of order in:\n" << r.text;
    at = p + u.size();
  }
  EXPECT_NE(r.text.find("zero counters"), std::string::npos);
  // The help texts line up in one column.
  size_t c1 = r.text.find("zero counters") - r.text.rfind('\n', r.text.find("zero counters"));
  size_t c2 = r.text.find("all ports") - r.text.rfind('\n', r.text.find("all ports"));
  EXPECT_EQ(c1, c2);
  ASSERT_TRUE(r.json.is_array());
  ASSERT_EQ(r.json.size(), 5u);
  EXPECT_EQ(r.json[0]["usage"], "clear stats");
  EXPECT_EQ(r.json[4]["usage"], "show ports");
  EXPECT_EQ(reg.run(dp, {"help", "help"}).status, 0);
}

TEST_F(Registry, HelpPutsTheHelpOfALongUsageOnTheNextLine) {
  const std::string long_usage = "capture start DEV [ingress|egress|both] file PATH [count N]";
  reg.add({{"capture", "start"}, long_usage, "start a capture", reply_with("")});
  CmdResult r = reg.run(dp, {"help"});
  ASSERT_EQ(r.status, 0);
  const size_t at = r.text.find(long_usage);
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(r.text[at + long_usage.size()], '\n') << r.text;
  // … and in the same column as the others.
  const size_t h = r.text.find("start a capture");
  const size_t z = r.text.find("zero counters");
  EXPECT_EQ(h - r.text.rfind('\n', h), z - r.text.rfind('\n', z)) << r.text;
}

TEST_F(Registry, HelpForSomeWords) {
  CmdResult r = reg.run(dp, {"help", "show", "port"});
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.text.find("show port DEV"), std::string::npos);
  EXPECT_NE(r.text.find("show port stats [DEV]"), std::string::npos);
  EXPECT_EQ(r.text.find("show ports"), std::string::npos);
  EXPECT_EQ(r.text.find("clear"), std::string::npos);

  r = reg.run(dp, {"help", "show"});
  EXPECT_EQ(r.json.size(), 3u);

  // A full command line: the help of the command it would run.
  r = reg.run(dp, {"help", "show", "ports", "eth0"});
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.json.size(), 1u);
  EXPECT_NE(r.text.find("all ports"), std::string::npos);

  r = reg.run(dp, {"help", "nope"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.text.find("nope"), std::string::npos);
}

TEST_F(Registry, ExceptionsBecomeErrors) {
  reg.add({{"boom"}, "boom", "", [](Dataplane&, const std::vector<std::string>&) -> CmdResult {
             throw std::runtime_error("kaput");
           }});
  reg.add({{"boom", "int"},
           "boom int",
           "",
           [](Dataplane&, const std::vector<std::string>&) -> CmdResult { throw 42; }});
  CmdResult r = reg.run(dp, {"boom", "now"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.text.find("kaput"), std::string::npos) << r.text;
  r = reg.run(dp, {"boom", "int"});
  EXPECT_EQ(r.status, 1);
  EXPECT_FALSE(r.text.empty());
}

TEST_F(Registry, SameWordsReplace) {
  reg.add({{"show", "ports"}, "show ports", "new", reply_with("new ports")});
  EXPECT_EQ(reg.all().size(), 4u);
  EXPECT_EQ(reg.run(dp, {"show", "ports"}).text, "new ports");
}

TEST(GlobalRegistry, HoldsTheCoreCommands) {
  auto& reg = CommandRegistry::instance();
  EXPECT_EQ(&reg, &CommandRegistry::instance());
  for (std::vector<std::string> words : {std::vector<std::string>{"show", "ports"},
                                         {"show", "port", "stats"},
                                         {"show", "port", "xstats"},
                                         {"show", "devices"},
                                         {"show", "drops"},
                                         {"show", "runtime"},
                                         {"clear", "stats"},
                                         {"set", "link"},
                                         {"version"}}) {
    size_t consumed = 0;
    const CommandSpec* s = reg.match(words, &consumed);
    ASSERT_NE(s, nullptr) << words[0] << " " << (words.size() > 1 ? words[1] : "");
    EXPECT_EQ(consumed, words.size());
    EXPECT_FALSE(s->help.empty());
  }
}

// ---- a client of the control socket
// --------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sluice-ctl-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int connect_to(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};  // never hang a test on a missing reply
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

class Client {
 public:
  explicit Client(const std::string& path) : fd_(connect_to(path)) {}
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  bool send_raw(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // One reply line, parsed; a string "<error …>" when there is none.
  json read_reply() {
    size_t nl;
    while ((nl = buf_.find('\n')) == std::string::npos) {
      char tmp[65536];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return "<error: no reply>";
      buf_.append(tmp, static_cast<size_t>(n));
    }
    std::string line = buf_.substr(0, nl);
    buf_.erase(0, nl + 1);
    json j = json::parse(line, nullptr, false);
    return j.is_discarded() ? json("<error: reply is not JSON: " + line + ">") : j;
  }
  json call(const std::vector<std::string>& argv, bool want_json = true) {
    if (!send_raw(json{{"argv", argv}, {"json", want_json}}.dump() + "\n"))
      return "<error: send failed>";
    return read_reply();
  }
  // True when the server closed the connection (EOF, or a reset when it left input unread).
  bool at_eof() {
    char c;
    if (!buf_.empty()) return false;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  int fd_;
  std::string buf_;
};

// Runs `body` on a client thread while this thread serves the socket.
void serve_while(ControlServer& server, const std::function<void()>& body) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    body();
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done && std::chrono::steady_clock::now() < deadline) server.poll(5);
  t.join();
}

uint16_t noop_rx_handler(Worker&, Device&, void*, rte_mbuf**, uint16_t n, RxResult* res) {
  for (uint16_t i = 0; i < n; i++) res[i] = RxResult::pass;
  return kNoDev;
}

class Server : public ::testing::Test {
 protected:
  TempDir tmp;
  std::string path = tmp.path() + "/run/sluice.sock";  // run/ does not exist yet
  Dataplane dp;
  Device* eth0 = nullptr;
  Device* eth1 = nullptr;
  Device* br0 = nullptr;
  Device* vlan = nullptr;

  Device* add(const char* name, const char* mac, DevKind kind) {
    auto d = std::make_unique<Device>();
    d->name = name;
    d->kind = kind;
    d->mac = *parse_mac(mac);
    return dp.net.add_device(std::move(d));
  }

  void SetUp() override {
    eth0 = add("eth0", "02:00:00:00:00:01", DevKind::port);
    eth1 = add("eth1", "02:00:00:00:00:02", DevKind::port);
    br0 = add("br0", "02:00:00:00:00:0a", DevKind::bridge);
    ASSERT_NE(eth0, nullptr);
    ASSERT_NE(eth1, nullptr);
    ASSERT_NE(br0, nullptr);
    std::string err;
    vlan = dp.net.add_vlan(*eth0, "eth0.100", 100, 0x8100, &err);
    ASSERT_NE(vlan, nullptr) << err;
    eth1->master = br0->index;
    ASSERT_TRUE(dp.net.set_rx_handler(*eth1, noop_rx_handler, nullptr, "bridge"));
    eth0->port_id = 31;  // no such ethdev in the unit tests: set link must not touch one
    dp.workers.push_back(std::make_unique<Worker>(dp.net, 0));
    dp.workers.push_back(std::make_unique<Worker>(dp.net, 1));
  }
  void TearDown() override { dp.net.clear_rx_handler(*eth1); }
};

TEST_F(Server, CreatesTheSocketAndRemovesIt) {
  {
    ControlServer server(dp, path);
    EXPECT_GE(server.fd(), 0);
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    EXPECT_EQ(::fcntl(server.fd(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(Server, ReplacesAStaleSocketButNotALiveOne) {
  std::filesystem::create_directories(tmp.path() + "/run");
  {  // a socket file nobody listens on (a crashed daemon's)
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  ControlServer server(dp, path);
  EXPECT_THROW(ControlServer(dp, path), std::runtime_error);  // in use
  EXPECT_TRUE(std::filesystem::exists(path)) << "the live socket must stay";
}

TEST_F(Server, RefusesAPathThatIsNotASocket) {
  std::string file = tmp.path() + "/plain";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    std::fclose(f);
  }
  EXPECT_THROW(ControlServer(dp, file), std::runtime_error);
  EXPECT_TRUE(std::filesystem::exists(file));
  EXPECT_THROW(ControlServer(dp, tmp.path() + "/" + std::string(120, 'x')), std::runtime_error);
}

TEST_F(Server, SeveralRequestsOnOneConnection) {
  ControlServer server(dp, path);
  json v, v_text, unknown, again;
  serve_while(server, [&] {
    Client c(path);
    ASSERT_TRUE(c.ok());
    v = c.call({"version"});
    v_text = c.call({"version"}, false);
    unknown = c.call({"frobnicate"});
    again = c.call({"version"});
  });
  EXPECT_EQ(v["status"], 0);
  EXPECT_EQ(v["json"]["version"], SLUICE_VERSION);
  EXPECT_EQ(v["json"]["dpdk"], rte_version());
  EXPECT_NE(v["text"].get<std::string>().find(SLUICE_VERSION), std::string::npos);
  EXPECT_EQ(v_text["status"], 0);
  EXPECT_TRUE(v_text["json"].is_null()) << "json only when asked for";
  EXPECT_FALSE(v_text["text"].get<std::string>().empty());
  EXPECT_EQ(unknown["status"], 1);
  EXPECT_EQ(unknown["text"], "unknown command 'frobnicate'; try 'help'");
  EXPECT_TRUE(unknown["json"].is_null());
  EXPECT_EQ(again["status"], 0);
}

TEST_F(Server, MalformedRequestsGetAnErrorAndTheConnectionStays) {
  ControlServer server(dp, path);
  std::vector<json> replies;
  serve_while(server, [&] {
    Client c(path);
    for (const char* bad :
         {"this is not json", "[1, 2]", R"({"json": true})", R"({"argv": "version"})",
          R"({"argv": ["version", 7]})", R"({"argv": ["version"], "json": "yes"})"}) {
      c.send_raw(std::string(bad) + "\n");
      replies.push_back(c.read_reply());
    }
    c.send_raw("\n  \r\n");  // blank lines are no requests: no reply
    replies.push_back(c.call({"version"}));
  });
  ASSERT_EQ(replies.size(), 7u);
  for (size_t i = 0; i < 6; i++) {
    EXPECT_EQ(replies[i]["status"], 1) << replies[i];
    EXPECT_NE(replies[i]["text"].get<std::string>().find("malformed request"), std::string::npos)
        << replies[i];
    EXPECT_TRUE(replies[i]["json"].is_null());
  }
  EXPECT_EQ(replies[6]["status"], 0);
  EXPECT_EQ(replies[6]["json"]["version"], SLUICE_VERSION);
}

TEST_F(Server, PipelinedRequestsAnswerInOrderAndEchoTheId) {
  ControlServer server(dp, path);
  std::vector<json> replies;
  serve_while(server, [&] {
    Client c(path);
    std::string burst;
    for (int i = 0; i < 5; i++)
      burst +=
          json{{"argv", {i % 2 ? "nope" : "version"}}, {"json", true}, {"id", i}}.dump() + "\n";
    c.send_raw(burst);
    for (int i = 0; i < 5; i++) replies.push_back(c.read_reply());
  });
  ASSERT_EQ(replies.size(), 5u);
  for (int i = 0; i < 5; i++) {
    EXPECT_EQ(replies[i]["id"], i);
    EXPECT_EQ(replies[i]["status"], i % 2 ? 1 : 0);
  }
}

TEST_F(Server, AnswersAClientThatShutDownItsWriteSide) {
  ControlServer server(dp, path);
  json r;
  bool eof = false;
  serve_while(server, [&] {
    Client c(path);
    c.send_raw(R"({"argv": ["version"], "json": true})");  // no newline: EOF ends it
    ::shutdown(c.fd(), SHUT_WR);
    r = c.read_reply();
    eof = c.at_eof();
  });
  EXPECT_EQ(r["status"], 0);
  EXPECT_TRUE(eof);
  EXPECT_EQ(server.clients(), 0u);
}

TEST_F(Server, HandlerExceptionsAndOversizedRequests) {
  CommandRegistry reg;
  reg.add({{"throw"}, "throw", "", [](Dataplane&, const std::vector<std::string>&) -> CmdResult {
             throw std::logic_error("handler failed");
           }});
  ControlServer server(dp, path, reg);
  json thrown, too_long;
  bool eof = false;
  serve_while(server, [&] {
    Client c(path);
    thrown = c.call({"throw"});
    Client big(path);
    big.send_raw(std::string(ControlServer::kMaxRequest + 4096, 'x'));
    too_long = big.read_reply();
    eof = big.at_eof();
  });
  EXPECT_EQ(thrown["status"], 1);
  EXPECT_NE(thrown["text"].get<std::string>().find("handler failed"), std::string::npos);
  EXPECT_EQ(too_long["status"], 1) << too_long;
  EXPECT_TRUE(eof);
}

TEST_F(Server, DropsAClientThatDoesNotReadWithoutBlocking) {
  CommandRegistry reg;
  reg.add({{"big"}, "big", "", [](Dataplane&, const std::vector<std::string>&) {
             CmdResult r;
             r.text.assign(4 << 20, 'y');  // far more than a socket buffer
             return r;
           }});
  ControlServer server(dp, path, reg);
  server.set_write_timeout_ms(200);
  Client c(path);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.send_raw(R"({"argv": ["big"]})"
                         "\n"));
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  std::vector<clock::duration> polls;
  bool seen = false;
  while (clock::now() - start < std::chrono::seconds(10)) {
    const auto t0 = clock::now();
    server.poll(10);
    polls.push_back(clock::now() - t0);
    seen |= server.clients() == 1;
    if (seen && server.clients() == 0) break;
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(server.clients(), 0u) << "a client that does not read must be dropped";
  // The longest poll ran the command (building 4 MB); every other one must be short.
  std::sort(polls.begin(), polls.end());
  ASSERT_GE(polls.size(), 3u);
  EXPECT_LT(polls[polls.size() - 2], std::chrono::milliseconds(300))
      << "poll() blocked on the client";
  EXPECT_LT(clock::now() - start, std::chrono::seconds(5));
}

// ---- the core commands over the socket: the JSON shapes of docs/CLI.md --------------------------

TEST_F(Server, ShowDevices) {
  ControlServer server(dp, path);
  json r;
  serve_while(server, [&] { r = Client(path).call({"show", "devices"}); });
  ASSERT_EQ(r["status"], 0) << r;
  const json& j = r["json"];
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 4u);
  const json& e0 = j["eth0"];
  EXPECT_EQ(e0["kind"], "port");
  EXPECT_EQ(e0["admin_up"], true);
  EXPECT_EQ(e0["oper_up"], true);
  EXPECT_EQ(e0["mac"], "02:00:00:00:00:01");
  EXPECT_EQ(e0["mtu"], 1500);
  EXPECT_TRUE(e0["master"].is_null());
  EXPECT_TRUE(e0["rx_handler"].is_null());
  EXPECT_TRUE(e0["link"].is_null());
  EXPECT_EQ(e0["index"], eth0->index);
  EXPECT_EQ(j["eth1"]["master"], "br0");
  EXPECT_EQ(j["eth1"]["rx_handler"], "bridge");
  EXPECT_EQ(j["br0"]["kind"], "bridge");
  EXPECT_EQ(j["br0"]["mac"], "02:00:00:00:00:0a");
  const json& v = j["eth0.100"];
  EXPECT_EQ(v["kind"], "vlan");
  EXPECT_EQ(v["link"], "eth0");
  EXPECT_EQ(v["vlan_id"], 100);
  const std::string text = r["text"];
  for (const char* s : {"eth0", "eth1", "br0", "eth0.100", "bridge", "02:00:00:00:00:0a"})
    EXPECT_NE(text.find(s), std::string::npos) << s << " not in\n" << text;
}

TEST_F(Server, ShowPortStatsSumsTheWorkers) {
  dp.workers[0]->c(eth0->index).rx_packets = 3;
  dp.workers[1]->c(eth0->index).rx_packets = 4;
  dp.workers[1]->c(eth0->index).tx_bytes = 1000;
  dp.workers[0]->c(vlan->index).multicast = 2;
  ControlServer server(dp, path);
  json all, dflt, one, missing, extra;
  serve_while(server, [&] {
    Client c(path);
    all = c.call({"show", "port", "stats", "all"});
    dflt = c.call({"show", "port", "stats"});
    one = c.call({"show", "port", "stats", "eth0"});
    missing = c.call({"show", "port", "stats", "eth9"});
    extra = c.call({"show", "port", "stats", "eth0", "eth1"});
  });
  ASSERT_EQ(all["status"], 0) << all;
  const json& j = all["json"];
  EXPECT_EQ(j.size(), 4u) << "every device, not only ports";
  for (auto& [name, c] : j.items()) {
    for (const char* k :
         {"rx_packets", "rx_bytes", "rx_dropped", "rx_nohandler", "rx_otherhost_dropped",
          "tx_packets", "tx_bytes", "tx_dropped", "multicast"}) {
      ASSERT_TRUE(c.contains(k)) << name << " lacks " << k;
      EXPECT_TRUE(c[k].is_number_integer()) << name << "." << k;
    }
  }
  EXPECT_EQ(j["eth0"]["rx_packets"], 7);
  EXPECT_EQ(j["eth0"]["tx_bytes"], 1000);
  EXPECT_EQ(j["eth0.100"]["multicast"], 2);
  EXPECT_EQ(j["eth1"]["rx_packets"], 0);
  EXPECT_EQ(dflt["json"], j);
  ASSERT_EQ(one["status"], 0);
  EXPECT_EQ(one["json"].size(), 1u);
  EXPECT_EQ(one["json"]["eth0"], j["eth0"]);
  EXPECT_EQ(missing["status"], 1);
  EXPECT_EQ(missing["text"], "no such device 'eth9'");
  EXPECT_EQ(extra["status"], 1);
}

TEST_F(Server, ShowDropsOnlyNonZero) {
  dp.workers[0]->drops[eth0->index][static_cast<unsigned>(DropReason::unhandled_proto)] = 2;
  dp.workers[1]->drops[eth0->index][static_cast<unsigned>(DropReason::unhandled_proto)] = 1;
  dp.workers[1]->drops[eth0->index][static_cast<unsigned>(DropReason::otherhost)] = 1;
  dp.workers[0]->drops[br0->index][static_cast<unsigned>(DropReason::round_limit)] = 5;
  ControlServer server(dp, path);
  json r, cleared;
  serve_while(server, [&] {
    Client c(path);
    r = c.call({"show", "drops"});
    EXPECT_EQ(c.call({"clear", "stats"})["status"], 0);
    cleared = c.call({"show", "drops"});
  });
  ASSERT_EQ(r["status"], 0) << r;
  EXPECT_EQ(r["json"], json::parse(R"({"eth0": {"unhandled_proto": 3, "otherhost": 1},
                                         "br0": {"round_limit": 5}})"));
  const std::string text = r["text"];
  EXPECT_NE(text.find("unhandled_proto"), std::string::npos);
  EXPECT_NE(text.find("total: 9"), std::string::npos) << text;
  EXPECT_EQ(cleared["json"], json::object());
}

TEST_F(Server, ShowPorts) {
  PortInfo p;
  p.dev = eth0->index;
  p.port_id = 31;
  p.devargs = "net_null0";
  p.driver = "net_null";
  p.rx_queues = 2;
  p.tx_queues = 3;
  p.link_up = true;
  p.speed_mbps = 10000;
  p.full_duplex = true;
  p.link_changes = 1;
  p.pollers = {{0, 0}, {1, 1}};
  dp.ports.push_back(p);
  ControlServer server(dp, path);
  json r;
  serve_while(server, [&] { r = Client(path).call({"show", "ports"}); });
  ASSERT_EQ(r["status"], 0) << r;
  ASSERT_EQ(r["json"].size(), 1u) << "ports only";
  const json& e = r["json"]["eth0"];
  EXPECT_EQ(e["port_id"], 31);
  EXPECT_EQ(e["device"], "net_null0");
  EXPECT_EQ(e["driver"], "net_null");
  EXPECT_EQ(e["link_up"], true);
  EXPECT_EQ(e["speed_mbps"], 10000);
  EXPECT_EQ(e["duplex"], "full");
  EXPECT_EQ(e["rx_queues"], 2);
  EXPECT_EQ(e["tx_queues"], 3);
  EXPECT_EQ(e["mac"], "02:00:00:00:00:01");
  EXPECT_EQ(e["mtu"], 1500);
  EXPECT_EQ(e["link_changes"], 1);
  EXPECT_EQ(e["pollers"], json::parse(R"([{"worker": 0, "queue": 0}, {"worker": 1, "queue": 1}])"));
}

TEST_F(Server, ShowRuntime) {
  dp.workers[0]->runtime.stats[stage::port_rx] = StageStats{2, 64, 3200};
  dp.workers[1]->runtime.stats[stage::port_rx] = StageStats{1, 36, 6800};
  ControlServer server(dp, path);
  json r;
  serve_while(server, [&] { r = Client(path).call({"show", "runtime"}); });
  ASSERT_EQ(r["status"], 0) << r;
  const json& j = r["json"];
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), stage_count() - 1u);  // every registered stage, in path order
  EXPECT_EQ(j[0]["stage"], "port-rx");
  EXPECT_EQ(j[0]["calls"], 3);
  EXPECT_EQ(j[0]["packets"], 100);
  EXPECT_EQ(j[0]["cycles"], 10000);
  EXPECT_DOUBLE_EQ(j[0]["cycles_per_packet"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(j[0]["packets_per_call"].get<double>(), 100.0 / 3);
  EXPECT_EQ(j[1]["stage"], "eth-type-trans");
  EXPECT_EQ(j[1]["cycles_per_packet"], 0.0);
  EXPECT_EQ(j.back()["stage"], "port-tx");  // rank 900: last
  // Each worker's own counters (bench/run --workers 2 reports them per worker).
  ASSERT_EQ(j[0]["workers"].size(), 2u) << j[0];
  EXPECT_EQ(j[0]["workers"][0]["worker"], 0);
  EXPECT_EQ(j[0]["workers"][0]["lcore"], dp.workers[0]->lcore);
  EXPECT_EQ(j[0]["workers"][0]["calls"], 2);
  EXPECT_EQ(j[0]["workers"][0]["packets"], 64);
  EXPECT_EQ(j[0]["workers"][0]["cycles"], 3200);
  EXPECT_EQ(j[0]["workers"][1]["worker"], 1);
  EXPECT_EQ(j[0]["workers"][1]["packets"], 36);
  EXPECT_EQ(j[0]["workers"][1]["cycles"], 6800);
  EXPECT_EQ(j[1]["workers"][1]["packets"], 0);
  const std::string text = r["text"];
  EXPECT_NE(text.find("worker 0"), std::string::npos) << text;
  EXPECT_NE(text.find("worker 1"), std::string::npos) << text;
  EXPECT_NE(text.find("port-rx"), std::string::npos) << text;
  EXPECT_EQ(text.find("eth-type-trans"), std::string::npos)
      << text;  // stages that never ran: not listed
  // clear runtime: the totals start again; the per-worker tables stay raw.
  serve_while(server, [&] { r = Client(path).call({"clear", "runtime"}); });
  ASSERT_EQ(r["status"], 0) << r;
  serve_while(server, [&] { r = Client(path).call({"show", "runtime"}); });
  EXPECT_EQ(r["json"][0]["packets"], 0) << r;
  EXPECT_EQ(r["json"][0]["workers"][0]["packets"], 64) << r;
}

// Exclusive accounting: a nested stage's cycles are not also its caller's.
TEST(StageClock, NestedScopesChargeEachStageItsOwnTime) {
  StageClock c;
  const StageId outer = stage_register("test-outer"), inner = stage_register("test-inner");
  c.mark = 1000;
  StageId p0 = c.enter(outer, 32, 1000);  // outer runs 1000..1100
  StageId p1 = c.enter(inner, 8, 1100);   // inner runs 1100..1400
  c.leave(p1, 1400);                      // outer again 1400..1450
  c.leave(p0, 1450);
  // A timed burst stands for kStageSampleEvery bursts.
  EXPECT_EQ(c.stats[outer].cycles, 150u * kStageSampleEvery);
  EXPECT_EQ(c.stats[inner].cycles, 300u * kStageSampleEvery);
  EXPECT_EQ(c.stats[outer].calls, 1u);
  EXPECT_EQ(c.stats[outer].packets, 32u);
  EXPECT_EQ(c.stats[inner].packets, 8u);
  EXPECT_EQ(c.cur, kStageNone);
  EXPECT_EQ(stage_register("test-outer"), outer);  // same name, same id
  EXPECT_STREQ(stage_name(inner), "test-inner");
}

// A stage entered from within itself (a bond member's dev_queue_xmit inside
// the bond's) counts its call and packets and reads no clock: no boundary.
TEST(StageClock, ReenteredStageCountsWithoutABoundary) {
  StageClock c;
  const StageId outer = stage_register("test-outer");
  {
    StageScope a(c, outer, 32);
    const uint64_t mark = c.mark;
    {
      StageScope b(c, outer, 16);
      EXPECT_EQ(c.cur, outer);
      EXPECT_EQ(c.mark, mark);
    }
    EXPECT_EQ(c.cur, outer);
    EXPECT_EQ(c.mark, mark);
  }
  EXPECT_EQ(c.cur, kStageNone);
  EXPECT_EQ(c.stats[outer].calls, 2u);
  EXPECT_EQ(c.stats[outer].packets, 48u);
}

// An untimed burst counts calls and packets and opens no interval: nothing
// is charged and the running stage does not change.
TEST(StageClock, UntimedBurstCountsWithoutTheClock) {
  StageClock c;
  const StageId outer = stage_register("test-outer"), inner = stage_register("test-inner");
  EXPECT_TRUE(c.next_timed());  // the first burst is timed
  c.bursts = 1;
  EXPECT_FALSE(c.next_timed());
  c.bursts = kStageSampleEvery;
  EXPECT_TRUE(c.next_timed());
  c.timed = false;
  const uint64_t before = c.stats[outer].cycles + c.stats[inner].cycles;
  {
    StageScope a(c, outer, 32);
    EXPECT_EQ(c.cur, kStageNone);
    StageScope b(c, inner, 8);
    EXPECT_EQ(c.cur, kStageNone);
  }
  EXPECT_EQ(c.cur, kStageNone);
  EXPECT_EQ(c.stats[outer].calls, 1u);
  EXPECT_EQ(c.stats[outer].packets, 32u);
  EXPECT_EQ(c.stats[inner].packets, 8u);
  EXPECT_EQ(c.stats[outer].cycles + c.stats[inner].cycles, before);
}

TEST_F(Server, SetLink) {
  ControlServer server(dp, path);
  json down, up_vlan_down, bad_state, missing, devs;
  serve_while(server, [&] {
    Client c(path);
    down = c.call({"set", "link", "eth0", "down"});
    up_vlan_down = c.call({"set", "link", "eth0.100", "down"});
    bad_state = c.call({"set", "link", "eth0", "sideways"});
    missing = c.call({"set", "link", "eth7", "up"});
    devs = c.call({"show", "devices"});
  });
  EXPECT_EQ(down["status"], 0) << down;
  EXPECT_EQ(up_vlan_down["status"], 0) << up_vlan_down;
  EXPECT_FALSE(eth0->admin_up.load());
  EXPECT_FALSE(vlan->admin_up.load());
  EXPECT_EQ(bad_state["status"], 1);
  EXPECT_NE(bad_state["text"].get<std::string>().find("usage"), std::string::npos);
  EXPECT_EQ(missing["text"], "no such device 'eth7'");
  EXPECT_EQ(devs["json"]["eth0"]["admin_up"], false);

  serve_while(server, [&] { down = Client(path).call({"set", "link", "eth0", "up"}); });
  EXPECT_EQ(down["status"], 0);
  EXPECT_TRUE(eth0->admin_up.load());
}

TEST_F(Server, XstatsNeedAPort) {
  ControlServer server(dp, path);
  json bridge, no_ethdev, missing;
  serve_while(server, [&] {
    Client c(path);
    bridge = c.call({"show", "port", "xstats", "br0"});
    no_ethdev = c.call({"show", "port", "xstats", "eth0"});
    missing = c.call({"show", "port", "xstats"});
  });
  EXPECT_EQ(bridge["status"], 1);
  EXPECT_NE(bridge["text"].get<std::string>().find("not a port"), std::string::npos);
  EXPECT_EQ(no_ethdev["status"], 1);
  EXPECT_EQ(missing["status"], 1);
}

// ---- format helpers
// ------------------------------------------------------------------------------

TEST(Format, Mac) {
  rte_ether_addr m{{0x02, 0x00, 0xab, 0xCD, 0x0f, 0xff}};
  EXPECT_EQ(mac_to_string(m), "02:00:ab:cd:0f:ff");
  auto p = parse_mac("02:00:AB:cd:0f:ff");
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(rte_is_same_ether_addr(&*p, &m));
  EXPECT_TRUE(parse_mac("02-00-ab-cd-0f-ff").has_value());
  EXPECT_FALSE(parse_mac("02:00:ab:cd:0f").has_value());
  EXPECT_FALSE(parse_mac("02:00:ab:cd:0f:fg").has_value());
  EXPECT_FALSE(parse_mac("02:00-ab:cd:0f:ff").has_value());
}

TEST(Format, HumanCount) {
  EXPECT_EQ(human_count(0), "0");
  EXPECT_EQ(human_count(999), "999");
  EXPECT_EQ(human_count(1234), "1.23K");
  EXPECT_EQ(human_count(5600000), "5.60M");
  EXPECT_EQ(human_count(999999), "1.00M");
  EXPECT_EQ(human_count(UINT64_MAX), "18.45E");
}

TEST(Format, TextTable) {
  TextTable t({{"NAME"}, {"COUNT", TextTable::right}, {"NOTE"}});
  t.add({"eth0", "5", "x"});
  t.add({"bond0", "12345"});
  EXPECT_EQ(t.str(),
            "NAME   COUNT  NOTE\n"
            "eth0       5  x\n"
            "bond0  12345\n");
  EXPECT_EQ(t.rows(), 2u);
}

}  // namespace
