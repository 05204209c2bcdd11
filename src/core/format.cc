#include "core/format.hh"

#include <algorithm>
#include <cstdio>

namespace sluice {

std::string mac_to_string(const rte_ether_addr& mac) {
  char buf[18];
  const uint8_t* b = mac.addr_bytes;
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4],
                b[5]);
  return buf;
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<rte_ether_addr> parse_mac(std::string_view s) {
  if (s.size() != 17) return std::nullopt;
  const char sep = s[2];
  if (sep != ':' && sep != '-') return std::nullopt;
  rte_ether_addr mac{};
  for (size_t i = 0; i < 6; i++) {
    const size_t at = i * 3;
    int hi = hex_digit(s[at]), lo = hex_digit(s[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (i < 5 && s[at + 2] != sep) return std::nullopt;
    mac.addr_bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

std::string human_count(uint64_t n) {
  if (n < 1000) return std::to_string(n);
  static const char kSuffix[] = "KMGTPE";
  double v = static_cast<double>(n);
  size_t i = 0;
  for (v /= 1000; v >= 999.995 && i + 1 < sizeof kSuffix - 1; i++) v /= 1000;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%c", v, kSuffix[i]);
  return buf;
}

void TextTable::add(std::vector<std::string> row) {
  row.resize(std::max(row.size(), cols_.size()));
  rows_.push_back(std::move(row));
}

std::string TextTable::str(size_t indent) const {
  std::vector<size_t> width(cols_.size());
  for (size_t c = 0; c < cols_.size(); c++) {
    width[c] = cols_[c].title.size();
    for (auto& r : rows_) width[c] = std::max(width[c], r[c].size());
  }
  std::string out;
  auto line = [&](auto cell) {
    std::string l(indent, ' ');
    for (size_t c = 0; c < cols_.size(); c++) {
      const std::string& s = cell(c);
      const size_t pad = width[c] - s.size();
      if (c != 0) l += "  ";
      if (cols_[c].align == right) l.append(pad, ' ');
      l += s;
      if (cols_[c].align == left) l.append(pad, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l;
    out += '\n';
  };
  line([&](size_t c) -> const std::string& { return cols_[c].title; });
  for (auto& r : rows_) line([&](size_t c) -> const std::string& { return r[c]; });
  return out;
}

}  // namespace sluice
