#include "core/feature.hh"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "core/dataplane.hh"

namespace sluice {

namespace {

std::vector<const Feature*>& registered() {
  static std::vector<const Feature*> v;
  return v;
}

// Kahn's algorithm over the `after`/`before` edges between registered
// features; among the ready ones the smallest name goes first.
std::vector<const Feature*> dependency_order() {
  std::map<std::string_view, const Feature*> by_name;
  for (const Feature* f : registered())
    if (!by_name.emplace(f->name, f).second)
      throw std::logic_error("feature '" + std::string(f->name) + "' is registered twice");
  std::map<std::string_view, std::set<std::string_view>> needs;  // name → must come first
  for (const Feature* f : registered()) {
    needs[f->name];
    for (auto a : f->after)
      if (by_name.contains(a)) needs[f->name].insert(a);
    for (auto b : f->before)
      if (by_name.contains(b)) needs[b].insert(f->name);
  }
  std::vector<const Feature*> order;
  while (!needs.empty()) {
    auto ready =
        std::find_if(needs.begin(), needs.end(), [](auto& kv) { return kv.second.empty(); });
    if (ready == needs.end()) {
      std::string names;
      for (auto& [n, _] : needs) names += (names.empty() ? "" : ", ") + std::string(n);
      throw std::logic_error("features depend on each other in a cycle: " + names);
    }
    std::string_view n = ready->first;
    order.push_back(by_name.at(n));
    needs.erase(ready);
    for (auto& [_, s] : needs) s.erase(n);
  }
  return order;
}

}  // namespace

FeatureRegistrar::FeatureRegistrar(const Feature& f) {
  registered().push_back(&f);
}

const std::vector<const Feature*>& features() {
  static const std::vector<const Feature*> order = dependency_order();
  return order;
}

const Feature* find_feature(std::string_view name) {
  for (const Feature* f : features())
    if (f->name == name) return f;
  return nullptr;
}

void setup_features(Dataplane& dp) {
  for (const Feature* f : features()) {
    if (f->setup != nullptr) f->setup(dp);
    if (f->shutdown != nullptr) dp.add_shutdown([f, &dp] { f->shutdown(dp); });
    if (f->clear_stats != nullptr) dp.add_clear_stats([f, &dp] { f->clear_stats(dp); });
  }
}

}  // namespace sluice
