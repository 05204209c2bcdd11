// Every drop in sluice has one of these reasons. Each feature declares its
// own in its folder (src/FEATURE/drop_reasons.def: one X(name, description)
// per line); the build concatenates those lists — the core's first, then the
// features' by folder name — into sluice/drop_reasons.inc, and this header
// makes the one enum that counters and `show drops` use. Names follow
// Linux's SKB_DROP_REASON_* (lower case) where one exists.
#pragma once

#include <cstdint>

namespace sluice {

enum class DropReason : uint16_t {
#define X(name, text) name,
#include "sluice/drop_reasons.inc"
#undef X
  count_
};
inline constexpr unsigned kNumDropReasons = static_cast<unsigned>(DropReason::count_);

const char* drop_reason_name(DropReason r);
const char* drop_reason_text(DropReason r);

}  // namespace sluice
