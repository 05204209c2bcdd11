// Features: what a folder of src/ (bridge, l3, hooks, capture, later bond,
// mirror, …) declares so that the loader, the daemon and the CLI know it
// without a central list. One static FeatureRegistrar in the folder says:
//
//   * name, and what must be set up before it (`after`; names of features
//     this build does not have are ignored) or after it (`before`);
//   * its top-level config sections (parsed by the folder's config.cc with
//     the loader's machinery, src/config/loader.hh) and its cross-checks,
//     run after every section is parsed, in dependency order;
//   * setup (builds it from dp.topo, registers timers, worker polls,
//     shutdown steps and `clear stats` baselines on the Dataplane),
//     shutdown and clear_stats (optional; run in reverse order / in order).
//
// Its commands register with CommandRegistrar (src/control/command.hh) and
// its drop reasons are its drop_reasons.def: both beside its code.
// docs/architecture.md, "Adding a feature", walks through one folder.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice {
class Dataplane;
namespace config {
class Loader;
struct Field;
class Topology;
}  // namespace config

struct ConfigSection {
  std::string_view name;  // the top-level key
  // Where it is listed in "expected one of: ..." messages (docs/config.md order).
  int order;
  void (*parse)(config::Loader& l, const config::Field& f);
};

struct Feature {
  std::string_view name;
  std::vector<std::string_view> after;   // set up (and checked) after these
  std::vector<std::string_view> before;  // … and before these
  std::vector<ConfigSection> sections;
  void (*check)(config::Loader& l) = nullptr;  // cross-references, after parsing
  void (*setup)(Dataplane& dp) = nullptr;
  void (*shutdown)(Dataplane& dp) = nullptr;     // before the ports close
  void (*clear_stats)(Dataplane& dp) = nullptr;  // take a baseline of its counters
  // `reload` (src/control/reload.cc) when one of its sections changed: with
  // apply false, says whether it can take `next` without a restart ("" or
  // why not, FILE:LINE:COL where a line is to blame) and changes nothing;
  // with apply true (after every feature said yes, workers paused: tables
  // may change in place), makes dp match `next` and keeps the state of what
  // did not change. dp.topo is still the old topology during both calls.
  // nullptr: a change to its sections needs a restart.
  std::string (*reload)(Dataplane& dp, const config::Topology& next, bool apply) = nullptr;
};

// Every registered feature, ordered so that each comes after what it
// depends on (ties by name, so the order is the same in every build).
// Throws std::logic_error on a dependency cycle.
const std::vector<const Feature*>& features();
const Feature* find_feature(std::string_view name);

struct FeatureRegistrar {
  explicit FeatureRegistrar(const Feature& f);
};

// Runs every feature's setup in order; registers their shutdown and
// clear_stats with dp. Throws what a setup throws.
void setup_features(Dataplane& dp);

}  // namespace sluice
