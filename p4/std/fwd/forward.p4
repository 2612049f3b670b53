// std.fwd.Forward — deliver by destination: the generated per-instance LPM table fills
// m.forward_*; this sends the packet out of that port, rewrites the MACs when the next hop's
// address is known, and decrements the TTL (dropping packets whose TTL runs out).
#ifndef MOSAICO_STD_FORWARD_P4
#define MOSAICO_STD_FORWARD_P4

control MosaicoForward(inout headers_t hdr, inout mosaico_meta_t m,
                       inout standard_metadata_t standard_metadata) {
    apply {
        if (m.forward_hit == 1w0 || !hdr.ipv4.isValid() || hdr.ipv4.ttl <= 8w1) {
            m.drop = 1w1;
        } else {
            hdr.ipv4.ttl = hdr.ipv4.ttl - 8w1;
            standard_metadata.egress_spec = m.forward_port;
            m.forwarded = 1w1;
            if (m.forward_rewrite_mac == 1w1) {
                hdr.ethernet.src = hdr.ethernet.dst;
                hdr.ethernet.dst = m.forward_dmac;
            }
        }
    }
}

#endif  // MOSAICO_STD_FORWARD_P4
