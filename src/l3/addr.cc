// Own addresses, the local tables made from them, and address text forms.
#include "l3/addr.hh"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/format.hh"
#include "core/net.hh"
#include "l3/snapshot.hh"

namespace sluice::l3 {

// ---- text forms -----------------------------------------------------------------------------

bool parse_ipv4(const std::string& s, uint32_t* out) {
  in_addr a;
  if (s.empty() || inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

bool parse_cidr4(const std::string& s, uint32_t* addr, uint8_t* len) {
  size_t slash = s.find('/');
  if (slash == std::string::npos) return false;
  if (!parse_ipv4(s.substr(0, slash), addr)) return false;
  std::string l = s.substr(slash + 1);
  if (l.empty() || l.size() > 2) return false;
  for (char c : l)
    if (c < '0' || c > '9') return false;
  int v = std::stoi(l);
  if (v > 32) return false;
  *len = static_cast<uint8_t>(v);
  return true;
}

Ip4Text::Ip4Text(uint32_t a) {
  std::snprintf(s, sizeof s, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

std::string ipv4_str(uint32_t a) {
  return Ip4Text(a).s;
}

std::string mac_str(const rte_ether_addr& a) {
  return mac_to_string(a);
}

bool parse_prefix6(const std::string& s, Addr6* p, uint8_t* len) {
  size_t slash = s.find('/');
  std::string a = s.substr(0, slash);
  if (inet_pton(AF_INET6, a.c_str(), p->data()) != 1) return false;
  int l = 128;
  if (slash != std::string::npos) {
    std::string t = s.substr(slash + 1);
    if (t.empty() || t.size() > 3 || t.find_first_not_of("0123456789") != std::string::npos)
      return false;
    l = std::stoi(t);
  }
  if (l > 128) return false;
  *len = static_cast<uint8_t>(l);
  for (int b = l; b < 128; b++) (*p)[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
  return true;
}

std::string ipv6_str(const uint8_t* a) {
  char b[64];
  inet_ntop(AF_INET6, a, b, sizeof b);
  return b;
}

void ipv6_link_local(const rte_ether_addr& mac, uint8_t* out) {
  std::memset(out, 0, 16);
  out[0] = 0xfe;
  out[1] = 0x80;
  out[8] = mac.addr_bytes[0] ^ 0x02;
  out[9] = mac.addr_bytes[1];
  out[10] = mac.addr_bytes[2];
  out[11] = 0xff;
  out[12] = 0xfe;
  out[13] = mac.addr_bytes[3];
  out[14] = mac.addr_bytes[4];
  out[15] = mac.addr_bytes[5];
}

void ipv6_solicited_node(const uint8_t* a, uint8_t* out) {
  static const uint8_t pfx[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  std::memcpy(out, pfx, 13);
  std::memcpy(out + 13, a + 13, 3);
}

// ---- Addresses ------------------------------------------------------------------------------

std::string Addresses::add(uint16_t dev, const std::string& cidr, Address* added, bool loopback) {
  Address a;
  a.dev = dev;
  a.loopback = loopback;
  if (cidr.find(':') != std::string::npos) {
    size_t slash = cidr.find('/');
    if (slash == std::string::npos) return "bad IPv6 prefix '" + cidr + "'";
    in6_addr x;
    if (inet_pton(AF_INET6, cidr.substr(0, slash).c_str(), &x) != 1)
      return "bad IPv6 address '" + cidr + "'";
    int l = std::atoi(cidr.c_str() + slash + 1);
    if (l < 0 || l > 128) return "bad IPv6 prefix length in '" + cidr + "'";
    a.v6 = true;
    std::memcpy(a.v6addr, &x, 16);
    a.len = static_cast<uint8_t>(l);
    addrs_.push_back(a);
    *added = a;
    return "";
  }
  if (!parse_cidr4(cidr, &a.addr, &a.len))
    return "bad IPv4 prefix '" + cidr + "' (want A.B.C.D/LEN)";
  uint32_t m = prefix_mask(a.len);
  if (a.addr == 0 || ((a.addr >> 24) == 127 && !loopback) || (a.addr >> 28) >= 14 ||
      (a.len < 31 && ((a.addr & ~m) == 0 || (a.addr & ~m) == ~m)))
    return "'" + cidr + "' is not a usable host address";
  for (const Address& o : addrs_)
    if (!o.v6 && o.addr == a.addr) return "address " + ipv4_str(a.addr) + " is already assigned";
  addrs_.push_back(a);
  *added = a;
  return "";
}

std::string Addresses::remove(uint16_t dev, const std::string& cidr, Address* removed) {
  Address want;
  Addresses scratch;  // parse it as add() does
  if (std::string e = scratch.add(dev, cidr, &want, true); !e.empty()) return e;
  for (auto it = addrs_.begin(); it != addrs_.end(); ++it) {
    const bool same =
        it->dev == dev && it->v6 == want.v6 && it->len == want.len &&
        (want.v6 ? std::memcmp(it->v6addr, want.v6addr, 16) == 0 : it->addr == want.addr);
    if (!same) continue;
    *removed = *it;
    addrs_.erase(it);
    return "";
  }
  return "address " + cidr + " is not assigned (Cannot assign requested address)";
}

std::vector<Address> Addresses::remove_dev(uint16_t dev) {
  std::vector<Address> out;
  for (auto it = addrs_.begin(); it != addrs_.end();) {
    if (it->dev == dev) {
      out.push_back(*it);
      it = addrs_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

bool Addresses::any_v6() const {
  for (const Address& a : addrs_)
    if (a.v6) return true;
  return false;
}

bool Addresses::on_link(uint32_t via, uint16_t* dev) const {
  for (const Address& a : addrs_) {
    if (a.v6 || (*dev != kNoDev && a.dev != *dev)) continue;
    uint32_t m = prefix_mask(a.len);
    if ((a.addr & m) == (via & m) && via != a.addr) {
      *dev = a.dev;
      return true;
    }
  }
  return false;
}

bool Addresses::on_link6(const uint8_t* via, uint16_t* dev) const {
  for (const Address& a : addrs_) {
    if (!a.v6 || (*dev != kNoDev && a.dev != *dev)) continue;
    bool in = true;
    for (int b = 0; b < a.len && in; b++) {
      uint8_t m = static_cast<uint8_t>(0x80 >> (b % 8));
      in = (a.v6addr[b / 8] & m) == (via[b / 8] & m);
    }
    if (in && std::memcmp(a.v6addr, via, 16) != 0) {
      *dev = a.dev;
      return true;
    }
  }
  return false;
}

uint32_t Addresses::source_for(uint16_t dev, uint32_t target) const {
  uint32_t first_dev = 0, any = 0;
  for (const Address& a : addrs_) {
    if (a.v6 || a.loopback) continue;
    if (any == 0) any = a.addr;
    if (a.dev != dev) continue;
    if (first_dev == 0) first_dev = a.addr;
    uint32_t m = prefix_mask(a.len);
    if ((a.addr & m) == (target & m)) return a.addr;
  }
  return first_dev != 0 ? first_dev : any;
}

void Addresses::fill_local(Snapshot& s) const {
  std::vector<LocalSlot> entries;
  for (const Address& a : addrs_) {
    if (a.v6) continue;
    if (s.dev_addr[a.dev] == 0) s.dev_addr[a.dev] = a.addr;
    entries.push_back(LocalSlot{a.addr, a.dev, RtType::local});
    if (a.len < 31)
      entries.push_back(LocalSlot{a.addr | ~prefix_mask(a.len), a.dev, RtType::broadcast});
  }
  uint32_t size = 64, bits = 6;
  while (size < entries.size() * 4 + 4) size <<= 1, bits++;
  s.local.assign(size, LocalSlot{});
  s.local_mask = size - 1;
  s.local_shift = 32 - bits;
  for (const LocalSlot& e : entries) {
    uint32_t i = s.local_slot(e.addr);
    while (s.local[i].addr != 0 && s.local[i].addr != e.addr) i = (i + 1) & s.local_mask;
    if (s.local[i].addr == 0 || e.type == RtType::local)
      s.local[i] = e;  // local wins over broadcast
  }
}

void Addresses::fill_local6(Snapshot& s, const Net& net) const {
  std::vector<uint16_t> v6devs;
  auto add = [&](const uint8_t* a, uint16_t dev, bool mcast) {
    Snapshot::Local6 l{};
    std::memcpy(l.a, a, 16);
    l.dev = dev;
    l.mcast = mcast;
    s.local6.push_back(l);
  };
  for (const Address& a : addrs_) {
    if (!a.v6) continue;
    uint8_t sn[16];
    add(a.v6addr, a.dev, false);
    ipv6_solicited_node(a.v6addr, sn);
    add(sn, a.dev, true);
    auto& da = s.dev_addr6[a.dev];
    if (std::all_of(da.begin(), da.end(), [](uint8_t b) { return b == 0; }))
      std::memcpy(da.data(), a.v6addr, 16);
    if (std::find(v6devs.begin(), v6devs.end(), a.dev) == v6devs.end()) v6devs.push_back(a.dev);
  }
  static const uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const uint8_t all_routers[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  for (uint16_t d : v6devs) {
    Device* dv = net.dev(d);
    if (dv == nullptr) continue;
    uint8_t ll[16], sn[16];
    ipv6_link_local(dv->mac, ll);
    ipv6_solicited_node(ll, sn);
    add(ll, d, false);
    add(sn, d, true);
    add(all_nodes, d, true);
    add(all_routers, d, true);
  }
}

}  // namespace sluice::l3
