// mosaico — packet headers and metadata shared by every generated program.
//
// Header and field names follow std.net (`ipv4.dst`, `tcp.dport`, `ipv4.ecn`, ...), so a
// `match` predicate's field `h.f` is `hdr.h.f` here: the backend never translates names.
#ifndef MOSAICO_HEADERS_P4
#define MOSAICO_HEADERS_P4

error {
    IPv4IncorrectVersion,
    IPv4HeaderTooShort
}

typedef bit<48> mac_addr_t;
typedef bit<32> ipv4_addr_t;

const bit<16> ETHERTYPE_IPV4 = 16w0x0800;
const bit<8> IP_PROTO_TCP = 8w6;
const bit<8> IP_PROTO_UDP = 8w17;

header ethernet_t {
    mac_addr_t dst;
    mac_addr_t src;
    bit<16> ether_type;
}

header ipv4_t {
    bit<4> version;
    bit<4> ihl;
    bit<6> dscp;
    bit<2> ecn;
    bit<16> total_len;
    bit<16> identification;
    bit<3> flags;
    bit<13> frag_offset;
    bit<8> ttl;
    bit<8> proto;
    bit<16> checksum;
    ipv4_addr_t src;
    ipv4_addr_t dst;
}

// IPv4 options (IHL > 5): kept opaque, but covered by the header checksum.
header ipv4_options_t {
    varbit<320> options;
}

header tcp_t {
    bit<16> sport;
    bit<16> dport;
    bit<32> seq;
    bit<32> ack;
    bit<4> data_offset;
    bit<4> reserved;
    bit<8> flags;
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent;
}

header udp_t {
    bit<16> sport;
    bit<16> dport;
    bit<16> length;
    bit<16> checksum;
}

struct headers_t {
    ethernet_t ethernet;
    ipv4_t ipv4;
    ipv4_options_t ipv4_options;
    tcp_t tcp;
    udp_t udp;
}

// Per-packet state of the service chain; v1model carries it from ingress to egress.
struct mosaico_meta_t {
    bit<8> service;       // classifier result: 0 = no service
    bit<8> segment;       // which visit of the service's route this switch is serving
    bit<1> drop;          // a filter decided to drop; later steps are skipped
    bit<1> forwarded;     // a Forward step chose the egress port
    bit<1> reply;         // a reply to a service's source: no function runs on it
    bit<9> next_port;     // where the segment sends the packet unless a Forward step decides
    bit<8> aqm;           // the DualQ unit that manages the egress queue: 0 = none
    bit<1> l4s;           // ECT(1) or CE at ingress: the packet waits in the L queue
    bit<1> forward_hit;   // a Forward table lookup found a route
    bit<9> forward_port;
    bit<1> forward_rewrite_mac;
    mac_addr_t forward_dmac;
}

struct metadata_t {
    mosaico_meta_t mosaico;
}

#endif  // MOSAICO_HEADERS_P4
