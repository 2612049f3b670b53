// mosaico — the one parser every generated program shares: Ethernet, IPv4 (with options),
// TCP and UDP. Headers it does not know stay in the payload untouched.
#ifndef MOSAICO_PARSER_P4
#define MOSAICO_PARSER_P4

parser MosaicoParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        verify(hdr.ipv4.version == 4w4, error.IPv4IncorrectVersion);
        verify(hdr.ipv4.ihl >= 4w5, error.IPv4HeaderTooShort);
        transition select(hdr.ipv4.ihl) {
            4w5: parse_l4;
            default: parse_ipv4_options;
        }
    }

    state parse_ipv4_options {
        packet.extract(hdr.ipv4_options, ((bit<32>)hdr.ipv4.ihl - 32w5) * 32w32);
        transition parse_l4;
    }

    state parse_l4 {
        // Only first fragments carry the transport header.
        transition select(hdr.ipv4.frag_offset, hdr.ipv4.proto) {
            (13w0, IP_PROTO_TCP): parse_tcp;
            (13w0, IP_PROTO_UDP): parse_udp;
            default: accept;
        }
    }

    state parse_tcp {
        packet.extract(hdr.tcp);
        transition accept;
    }

    state parse_udp {
        packet.extract(hdr.udp);
        transition accept;
    }
}

#endif  // MOSAICO_PARSER_P4
