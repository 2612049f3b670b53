// std.security.SynGuard — count TCP SYNs (SYN set, ACK clear) per destination bucket in
// fixed windows of `interval_us`; drop SYNs beyond `max_syns` in the current window.
// The generated program reads the bucket's registers, runs this, and writes them back.
#ifndef MOSAICO_STD_SYNGUARD_P4
#define MOSAICO_STD_SYNGUARD_P4

// Here, not in headers.p4: p4c warns about constants a program declares but never uses.
const bit<8> TCP_FLAG_SYN = 8w0x02;
const bit<8> TCP_FLAG_ACK = 8w0x10;

control MosaicoSynGuard(in headers_t hdr, inout mosaico_meta_t m, in bit<48> now,
                        inout bit<32> syns, inout bit<48> window_start, out bool dropped)
                       (bit<32> max_syns, bit<48> interval_us) {
    apply {
        dropped = false;
        if (hdr.tcp.isValid() && (hdr.tcp.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
            if (now - window_start >= interval_us) {
                window_start = now;
                syns = 32w0;
            }
            syns = syns |+| 32w1;
            if (syns > max_syns) {
                m.drop = 1w1;
                dropped = true;
            }
        }
    }
}

#endif  // MOSAICO_STD_SYNGUARD_P4
