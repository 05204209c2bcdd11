// The usage-string reading behind `complete` (src/control/complete.hh).
#include <gtest/gtest.h>

#include "control/complete.hh"

using sluice::complete::candidates;
using V = std::vector<std::string>;

namespace {

const V kUsages{
    "help [COMMAND...]",
    "show port stats [DEV|all]",
    "show port xstats DEV",
    "show ports",
    "show fdb BR",
    "show bond [BOND]",
    "set link DEV up|down",
    "fdb add BR MAC PORT [vlan V]",
    "route add PREFIX via ADDR|dev DEV",
    "capture start DEV|any [ingress|egress|both] [FILTER] file PATH [count N]",
    "capture stop [ID]",
};

V names(const std::string& ph, const std::string& command) {
  if (ph == "DEV" || ph == "PORT") return {"eth0", "eth1", "br0", "bond0"};
  if (ph == "BR") return {"br0"};
  if (ph == "BOND") return {"bond0"};
  if (ph == "ID" && command == "capture stop") return {"1", "2"};
  return {};
}

V c(V words, const std::string& partial) { return candidates(kUsages, words, partial, names); }

}  // namespace

TEST(Complete, FirstWordsAreTheCommandsKeywords) {
  EXPECT_EQ(c({}, ""), (V{"capture", "fdb", "help", "route", "set", "show"}));
  EXPECT_EQ(c({}, "s"), (V{"set", "show"}));
  EXPECT_EQ(c({"show"}, ""), (V{"bond", "fdb", "port", "ports"}));
  EXPECT_EQ(c({"show", "port"}, ""), (V{"stats", "xstats"}));
}

TEST(Complete, PlaceholdersGiveLiveNamesAndAlternativesKeywords) {
  EXPECT_EQ(c({"show", "port", "stats"}, ""), (V{"all", "bond0", "br0", "eth0", "eth1"}));
  EXPECT_EQ(c({"show", "port", "stats"}, "e"), (V{"eth0", "eth1"}));
  EXPECT_EQ(c({"show", "fdb"}, ""), (V{"br0"}));
  EXPECT_EQ(c({"show", "bond"}, ""), (V{"bond0"}));
  EXPECT_EQ(c({"set", "link", "eth0"}, ""), (V{"down", "up"}));
  EXPECT_EQ(c({"capture", "stop"}, ""), (V{"1", "2"}));
  // Nothing after a complete command.
  EXPECT_EQ(c({"show", "port", "stats", "eth0"}, ""), V{});
  EXPECT_EQ(c({"set", "link", "eth0", "up"}, ""), V{});
  EXPECT_EQ(c({"nope"}, ""), V{});
}

TEST(Complete, OptionalGroupsAndKeywordPairs) {
  EXPECT_EQ(c({"fdb", "add", "br0", "02:00:00:00:00:01", "eth0"}, ""), (V{"vlan"}));
  EXPECT_EQ(c({"fdb", "add", "br0", "02:00:00:00:00:01"}, "e"), (V{"eth0", "eth1"}));
  // "via ADDR|dev DEV" is (via ADDR) or (dev DEV).
  EXPECT_EQ(c({"route", "add", "10.0.0.0/24"}, ""), (V{"dev", "via"}));
  EXPECT_EQ(c({"route", "add", "10.0.0.0/24", "dev"}, ""), (V{"bond0", "br0", "eth0", "eth1"}));
  EXPECT_EQ(c({"route", "add", "10.0.0.0/24", "via"}, ""), V{});
  // Optional words may be left out; FILTER and PATH have no names.
  EXPECT_EQ(c({"capture", "start", "eth0"}, "b"), (V{"both"}));
  EXPECT_EQ(c({"capture", "start", "any", "ingress"}, "f"), (V{"file"}));
  EXPECT_EQ(c({"capture", "start", "any", "file", "/tmp/x.pcapng"}, ""), (V{"count"}));
}

TEST(Complete, HelpCompletesCommandKeywordsOnly) {
  EXPECT_EQ(c({"help"}, "sh"), (V{"show"}));
  EXPECT_EQ(c({"help", "show", "port"}, ""), (V{"stats", "xstats"}));
  EXPECT_EQ(c({"help", "show", "port", "stats"}, ""), (V{"all"}));
}
