// Completion of command lines from the registered usage strings: the
// daemon's `complete [WORDS...] PARTIAL` (sluicectl's Tab and the bash
// completion ask it). A usage is read as words: literal keywords (lower
// case), placeholders (upper case: DEV, BR, …), `a|b|C` alternatives,
// `[...]` optional groups (which may nest and hold several words) and a
// trailing `...` (the word repeats).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace sluice::complete {

// Live names for a placeholder (e.g. "DEV" → device names); `command` is
// the usage's leading keywords (e.g. "capture stop"), for placeholders
// whose meaning depends on the command.
using NameSource =
    std::function<std::vector<std::string>(const std::string& placeholder, const std::string& command)>;

// The candidates for the word after `words` that start with `partial`,
// sorted, without duplicates, over every usage in `usages`.
std::vector<std::string> candidates(const std::vector<std::string>& usages,
                                    const std::vector<std::string>& words,
                                    const std::string& partial, const NameSource& names);

}  // namespace sluice::complete
