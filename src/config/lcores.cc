// eal.lcores: EAL's lcore list or its lcore-to-CPU mapping (docs/config.md).
#include <rte_config.h>

#include <stdexcept>
#include <string>

#include "config/loader.hh"

namespace sluice::config {

namespace {
constexpr unsigned kMaxLcore = RTE_MAX_LCORE - 1;
constexpr unsigned kMaxCpu = 1023;  // CPU_SETSIZE - 1: what an EAL cpuset holds
}  // namespace

// An lcores string (docs/config.md): EAL's -l list ("0-1", "0,2-3") or its
// --lcores mapping ("0@0,1@0,2@1", "0,1@0,2@1", "(0-1)@0,2@1"):
//
//   lcores  := element (',' element)*
//   element := set ['@' set]          lcore ids, then the CPUs they run on
//   set     := id ['-' id] | '(' id ['-' id] (',' id ['-' id])* ')'
//
// No blanks. The lcore ids, in the order written, must increase without
// repeats, so that the first one, the main lcore, is also the lowest (DPDK's
// default main lcore). Never empty.
LcoreSpec parse_lcore_spec(std::string_view rest) {
  LcoreSpec spec;
  // what: "lcore" or "CPU".
  auto number = [&](const std::string& what, unsigned max) -> unsigned {
    size_t n = 0;
    while (n < rest.size() && is_digit(rest[n])) n++;
    const std::string expected = what == "lcore" ? "expected an lcore id" : "expected a CPU id";
    if (n == 0)
      throw std::invalid_argument(rest.empty() ? expected + " at the end"
                                               : expected + " at '" + std::string(rest) + "'");
    auto v = parse_int(rest.substr(0, n));
    if (*v > max)
      throw std::invalid_argument(what + " " + std::string(rest.substr(0, n)) +
                                  " is above the maximum " + std::to_string(max));
    rest.remove_prefix(n);
    return static_cast<unsigned>(*v);
  };
  // One set; calls add(lo, hi) for each id or range in it.
  auto set = [&](const std::string& what, unsigned max, auto add) {
    bool group = !rest.empty() && rest[0] == '(';
    if (group) {
      spec.mapped = true;
      rest.remove_prefix(1);
    }
    while (true) {
      unsigned lo = number(what, max), hi = lo;
      if (!rest.empty() && rest[0] == '-') {
        rest.remove_prefix(1);
        hi = number(what, max);
        if (hi < lo)
          throw std::invalid_argument("range " + std::to_string(lo) + "-" + std::to_string(hi) +
                                      " goes backwards");
      }
      add(lo, hi);
      if (!group) return;
      if (rest.empty()) throw std::invalid_argument("missing ')' at the end");
      if (rest[0] == ')') {
        rest.remove_prefix(1);
        return;
      }
      if (rest[0] != ',')
        throw std::invalid_argument("expected ',' or ')' at '" + std::string(rest) + "'");
      rest.remove_prefix(1);
    }
  };
  auto add_lcores = [&](unsigned lo, unsigned hi) {
    if (!spec.lcores.empty() && lo <= spec.lcores.back())
      throw std::invalid_argument("lcore " + std::to_string(lo) +
                                  " repeats or is out of increasing order");
    for (unsigned i = lo; i <= hi; i++) spec.lcores.push_back(i);
  };
  while (true) {
    set("lcore", kMaxLcore, add_lcores);
    if (!rest.empty() && rest[0] == '@') {
      spec.mapped = true;
      rest.remove_prefix(1);
      set("CPU", kMaxCpu, [](unsigned, unsigned) {});
    }
    if (rest.empty()) return spec;
    if (rest[0] != ',') throw std::invalid_argument("unexpected '" + std::string(rest) + "'");
    rest.remove_prefix(1);
  }
}

std::vector<unsigned> parse_lcores(const std::string& s) {
  std::vector<unsigned> all = parse_lcore_spec(s).lcores;
  return std::vector<unsigned>(all.begin() + 1, all.end());
}

}  // namespace sluice::config
