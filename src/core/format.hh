// Small formatting helpers for commands and logs: MAC addresses, counts, and
// an aligned text table (the human form of every `show` command).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rte_ether.h>

namespace sluice {

// "02:00:00:00:00:01" (lower case, as `ip link`).
std::string mac_to_string(const rte_ether_addr& mac);
// Accepts "02:00:00:00:00:01" or "02-00-00-00-00-01" (either case); nullopt otherwise.
std::optional<rte_ether_addr> parse_mac(std::string_view s);

// 999 → "999", 1234 → "1.23K", 5600000 → "5.60M" (K, M, G, T, P: powers of 1000).
std::string human_count(uint64_t n);

// Columns separated by two spaces, padded to the widest cell, no trailing
// blanks. Right-aligned columns are for numbers.
//
//   TextTable t({{"DEVICE"}, {"RX-PACKETS", TextTable::right}});
//   t.add({"eth0", "12"});
//   out += t.str();
class TextTable {
 public:
  enum Align : uint8_t { left, right };
  struct Column {
    std::string title;
    Align align = left;
  };

  explicit TextTable(std::vector<Column> columns) : cols_(std::move(columns)) {}
  // A row with fewer cells than columns is padded with empty cells.
  void add(std::vector<std::string> row);
  size_t rows() const { return rows_.size(); }
  // Header line plus one line per row, each ending in '\n'. `indent` spaces before every line.
  std::string str(size_t indent = 0) const;

 private:
  std::vector<Column> cols_;
  std::vector<std::vector<std::string>> rows_;
};

// The name of an enum value from a table in the enum's order; "?" outside it.
template <class E, size_t N>
const char* enum_name(E e, const char* const (&names)[N]) {
  auto i = static_cast<size_t>(e);
  return i < N ? names[i] : "?";
}

}  // namespace sluice
