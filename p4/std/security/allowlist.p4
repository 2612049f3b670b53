// std.security.Allowlist — forward only packets whose source lies in a listed prefix.
// Packets without an IPv4 header have no source address and are dropped.
#ifndef MOSAICO_STD_ALLOWLIST_P4
#define MOSAICO_STD_ALLOWLIST_P4

control MosaicoAllowlist(inout mosaico_meta_t m, in bool listed, out bool dropped) {
    apply {
        dropped = !listed;
        if (!listed) {
            m.drop = 1w1;
        }
    }
}

#endif  // MOSAICO_STD_ALLOWLIST_P4
