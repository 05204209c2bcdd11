// The common case of bond_xmit_hash inline (hash.cc has the general one):
// an unfragmented IPv4 header without options carrying TCP or UDP, for
// layer2+3 and layer3+4 — the same formulas without the flow dissection
// (unit test BondHash.* compares both on every kind of frame). Included by
// the transmit path so the hash and the member choice are one loop.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include <rte_mbuf.h>

namespace sluice::bond {

// The four bytes as a little-endian CPU loads them (hash.cc's le32).
inline uint32_t ld32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}

// What plain_ip4_l4 tests in the frame's bytes, without a branch: 0 for
// ethertype 0x0800, version 4 with IHL 5, no MF and offset 0, TCP or UDP,
// not 0 otherwise (the product is 0 only when the fragment bits are clear
// and the protocol is 6 or 17: both factors are below 2^32, so a 64-bit
// product does not wrap to 0). For a loop that hashes a whole burst and
// looks at the verdict once, after it; the caller has checked the length
// (38 bytes: the hash reads up to there).
inline uint64_t plain_ip4_l4_miss(const uint8_t* d) {
  const uint32_t a = ld32(d + 12);                // type hi, type lo, ver/ihl, tos
  const uint64_t b = ld32(d + 20) & 0xff00ff3fu;  // frag bits and protocol (not the ttl)
  return ((a & 0x00ffffffu) ^ 0x00450008u) | ((b ^ 0x06000000u) * (b ^ 0x11000000u));
}

// Ethertype 0x0800, version 4 with IHL 5, no MF and offset 0, TCP or UDP.
inline bool plain_ip4_l4(const rte_mbuf* m, const uint8_t* d) {
  const uint32_t a = ld32(d + 12);  // type hi, type lo, ver/ihl, tos
  const uint32_t b = ld32(d + 20);  // flags/frag hi, frag lo, ttl, protocol
  const uint32_t proto = b >> 24;
  return m->data_len >= 14 + 20 + 4 && (a & 0x00ffffffu) == 0x00450008u && (b & 0x0000ff3fu) == 0 &&
         (proto == 6 || proto == 17);
}

// The hash of such a frame before its two folds: (ports for layer3+4, the
// MACs' last bytes ^ ethertype for layer2+3) ^ saddr ^ daddr.
template <bool L34>
inline uint32_t plain_ip4_unfolded(const uint8_t* d) {
  const uint32_t h = L34 ? ld32(d + 34) : (uint32_t(d[5] ^ d[11]) ^ 0x0800u);
  return h ^ ld32(d + 26) ^ ld32(d + 30);
}

// bond_xmit_hash of such a frame: layer3+4 (L34) or layer2+3.
template <bool L34>
inline uint32_t plain_ip4_hash(const uint8_t* d) {
  uint32_t h = plain_ip4_unfolded<L34>(d);
  h ^= h >> 16;
  h ^= h >> 8;
  return L34 ? h >> 1 : h;
}

// plain_ip4_hash % 2, what a bond of two chooses by: the two folds XOR the
// bytes together, so bit 0 of the result is the parity of bit 0 (layer2+3)
// or bit 1 (layer3+4, which shifts once more) of the four unfolded bytes.
template <bool L34>
inline uint32_t plain_ip4_hash_odd(const uint8_t* d) {
  const uint32_t h = plain_ip4_unfolded<L34>(d);
  return static_cast<uint32_t>(std::popcount(h & (L34 ? 0x02020202u : 0x01010101u))) & 1u;
}

}  // namespace sluice::bond
