// The L3 sections `addresses:`, `routes:`, `neighbours:` and `punt:`
// (docs/config.md, docs/l3.md): their typed form, parsed and checked by
// src/l3/config.cc, reached as topo.get<l3::Config>().
#pragma once

#include <string>
#include <vector>

#include "config/topology.hh"

namespace sluice::config {

// addresses / routes / neighbours / punt (docs/l3.md).
struct L3Address {
  Mark mark;
  std::string dev;
  std::string address;  // CIDR, IPv4 or IPv6
  Mark dev_at, address_at;
};

struct L3Route {
  Mark mark;
  std::string prefix;  // CIDR
  std::string via;     // "" = on-link (dev must be given)
  std::string dev;     // "" = from the next hop's connected subnet
  std::string table = "main";
  Mark prefix_at, via_at, dev_at;
};

struct L3Neighbour {
  Mark mark;
  std::string dev;
  std::string address;
  std::string mac;
  Mark dev_at, address_at;
};

struct L3Punt {
  Mark mark;
  std::string dev;
  std::string tap;
  Mark dev_at, tap_at;
};

}  // namespace sluice::config

namespace sluice::l3 {

struct Config {
  std::vector<config::L3Address> addresses;
  std::vector<config::L3Route> routes;
  std::vector<config::L3Neighbour> neighbours;
  std::vector<config::L3Punt> punt;
};

}  // namespace sluice::l3
