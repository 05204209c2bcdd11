// The stage name registry (src/core/stage.hh).
#include "core/stage.hh"

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>

namespace sluice {
namespace {

struct Registry {
  std::mutex mu;
  std::deque<std::string> names{"(loop)"};  // id 0: kStageNone; a deque keeps c_str() valid
  std::vector<int> ranks{0};
};

Registry& registry() {
  static Registry r;  // function-local: usable from other files' static initialisers
  return r;
}

}  // namespace

StageId stage_register(const std::string& name, int rank) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  for (size_t i = 1; i < r.names.size(); i++)
    if (r.names[i] == name) return static_cast<StageId>(i);
  if (r.names.size() >= kMaxStages) return kStageNone;  // full: counted as loop time
  r.names.push_back(name);
  r.ranks.push_back(rank);
  return static_cast<StageId>(r.names.size() - 1);
}

StageId stage_register(const char* name, int rank) {
  return stage_register(std::string(name), rank);
}

int stage_rank(StageId id) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  return id < r.ranks.size() ? r.ranks[id] : 0;
}

std::vector<StageId> stages_in_order() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<StageId> ids;
  for (size_t i = 1; i < r.names.size(); i++) ids.push_back(static_cast<StageId>(i));
  std::stable_sort(ids.begin(), ids.end(),
                   [&](StageId a, StageId b) { return r.ranks[a] < r.ranks[b]; });
  return ids;
}

const char* stage_name(StageId id) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  return id < r.names.size() ? r.names[id].c_str() : "?";
}

unsigned stage_count() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  return static_cast<unsigned>(r.names.size());
}

}  // namespace sluice
