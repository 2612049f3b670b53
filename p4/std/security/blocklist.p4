// std.security.Blocklist — drop packets whose source lies in a listed prefix.
//
// The generated program owns the per-instance table (LPM on ipv4.src, a direct counter per
// prefix) and passes its verdict here; this control is the function's behaviour.
#ifndef MOSAICO_STD_BLOCKLIST_P4
#define MOSAICO_STD_BLOCKLIST_P4

control MosaicoBlocklist(inout mosaico_meta_t m, in bool listed, out bool dropped) {
    apply {
        dropped = listed;
        if (listed) {
            m.drop = 1w1;
        }
    }
}

#endif  // MOSAICO_STD_BLOCKLIST_P4
